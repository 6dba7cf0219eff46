//! Regenerates include/pprocess.h with cbindgen when the `header` feature is
//! on. Ordinary builds do nothing here and never compile cbindgen.
//!
//! `PPROCESS_HEADER_OUT` redirects the output (the freshness test writes a
//! copy elsewhere and compares it with the checked-in header).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "header")]
    header::generate();
}

#[cfg(feature = "header")]
mod header {
    use std::env;
    use std::path::PathBuf;

    pub fn generate() {
        let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
        let out = env::var_os("PPROCESS_HEADER_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("include/pprocess.h"));
        println!("cargo:rerun-if-env-changed=PPROCESS_HEADER_OUT");
        println!("cargo:rerun-if-changed=cbindgen.toml");
        println!("cargo:rerun-if-changed=src/ffi");
        let config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
            .expect("cbindgen.toml is valid");
        // Only src/ffi is parsed (cbindgen follows its `mod` declarations), so
        // the crate's internal constants never reach the header.
        let mut text = Vec::new();
        cbindgen::Builder::new()
            .with_config(config)
            .with_src(root.join("src/ffi/mod.rs"))
            .generate()
            .expect("cbindgen parses src/ffi")
            .write(&mut text);
        let text = String::from_utf8(text).expect("cbindgen writes UTF-8");
        let text: String = text.lines().map(parenthesize).collect();
        if std::fs::read_to_string(&out).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&out, text).expect("header path is writable");
        }
    }

    /// `#define PP_X -1000` becomes `#define PP_X (-1000)`, so that
    /// `x-PP_X` cannot read as `x--1000`.
    fn parenthesize(line: &str) -> String {
        let mut words = line.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("#define"), Some(name), Some(value)) if value.starts_with('-') => {
                format!("#define {name} ({value})\n")
            }
            _ => format!("{line}\n"),
        }
    }
}
