from __future__ import annotations
class Executor: pass
