# Builds the C libraries from the crate's `capi` feature with cargo alone, and
# installs them for C users with the header and a pkg-config file.
#
#   make                               target/release/libpprocess.a and the shared
#                                      library: libpprocess.so.$(VERSION), with the
#                                      SONAME libpprocess.so.$(ABI) and the links
#                                      libpprocess.so.$(ABI) and libpprocess.so
#   make install PREFIX=$HOME/.local   builds, then installs under PREFIX:
#       lib/libpprocess.a, lib/libpprocess.so.$(VERSION) and its two links,
#       include/pprocess.h, lib/pkgconfig/pprocess.pc
#   make uninstall PREFIX=...          removes those files
#
# PREFIX defaults to /usr/local; DESTDIR is prepended to every installed path
# (for packaging). PROFILE=dev builds unoptimized (target/debug);
# TARGET_DIR=dir uses another cargo target directory. cargo-c builds the same
# files (`cargo cinstall --prefix=...`, configured in Cargo.toml).
# The C examples and tests have their own Makefiles (c-examples/, c-tests/).

PREFIX       ?= /usr/local
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CARGO        ?= cargo
INSTALL      ?= install
PROFILE      ?= release
TARGET_DIR   ?= target

VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)
# The ABI version: releases with the same PP_VERSION_MAJOR are compatible.
ABI     := $(firstword $(subst ., ,$(VERSION)))
SONAME  := libpprocess.so.$(ABI)
SHARED  := libpprocess.so.$(VERSION)
BUILT   := $(TARGET_DIR)/$(if $(filter dev,$(PROFILE)),debug,$(PROFILE))

all: lib

# cargo decides whether the libraries are up to date. It writes the shared
# library as libpprocess.so; that file becomes the versioned one, and
# libpprocess.so a link to it (cargo replaces the link when it rebuilds).
lib:
	$(CARGO) rustc --quiet --lib --profile $(PROFILE) --features capi \
	    --target-dir $(TARGET_DIR) --crate-type staticlib --crate-type cdylib \
	    -- -C link-arg=-Wl,-soname,$(SONAME)
	cd $(BUILT) && { [ -L libpprocess.so ] || mv -f libpprocess.so $(SHARED); } && \
	    ln -sf $(SHARED) $(SONAME) && ln -sf $(SONAME) libpprocess.so

install: lib
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 644 $(BUILT)/libpprocess.a $(DESTDIR)$(LIBDIR)/libpprocess.a
	$(INSTALL) -m 755 $(BUILT)/$(SHARED) $(DESTDIR)$(LIBDIR)/$(SHARED)
	ln -sf $(SHARED) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libpprocess.so
	$(INSTALL) -m 644 include/pprocess.h $(DESTDIR)$(INCLUDEDIR)/pprocess.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    pprocess.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/pprocess.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/pprocess.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libpprocess.a $(DESTDIR)$(LIBDIR)/$(SHARED) \
	    $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libpprocess.so \
	    $(DESTDIR)$(INCLUDEDIR)/pprocess.h $(DESTDIR)$(PKGCONFIGDIR)/pprocess.pc

.PHONY: all lib install uninstall
