# Installs pprocess for C users: the static and shared libraries, the header
# and a pkg-config file.
#
#   make install PREFIX=$HOME/.local    cargo build --release, then installs
#       $(PREFIX)/lib/libpprocess.a, $(PREFIX)/lib/libpprocess.so,
#       $(PREFIX)/include/pprocess.h, $(PREFIX)/lib/pkgconfig/pprocess.pc
#   make uninstall PREFIX=...          removes those files
#
# PREFIX defaults to /usr/local; DESTDIR is prepended to every path (for
# packaging). PPROCESS_LIBDIR=dir installs the libraries already built in
# dir instead of running cargo (the test suite installs its own build).
# The C examples and tests have their own Makefiles (c-examples/, c-tests/).

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CARGO      ?= cargo
INSTALL    ?= install

VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)

ifdef PPROCESS_LIBDIR
BUILT := $(PPROCESS_LIBDIR)
build:
else
BUILT := target/release
build:
	$(CARGO) build --release --lib
endif

install: build
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 644 $(BUILT)/libpprocess.a $(DESTDIR)$(LIBDIR)/libpprocess.a
	$(INSTALL) -m 755 $(BUILT)/libpprocess.so $(DESTDIR)$(LIBDIR)/libpprocess.so
	$(INSTALL) -m 644 include/pprocess.h $(DESTDIR)$(INCLUDEDIR)/pprocess.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    pprocess.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/pprocess.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/pprocess.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libpprocess.a $(DESTDIR)$(LIBDIR)/libpprocess.so \
	    $(DESTDIR)$(INCLUDEDIR)/pprocess.h $(DESTDIR)$(PKGCONFIGDIR)/pprocess.pc

.PHONY: build install uninstall
