//! Embeds every `kernels/*.cu` file into the extension, so that an installed wheel can always
//! hand its CUDA sources to CuPy (`optcore._core.kernel_source(name)`).

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    // The repository's kernels/ (a source tree or an sdist, which includes it).
    let dir = manifest.join("../../kernels");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<(String, PathBuf)> = match fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cu" || x == "cuh"))
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
            .collect(),
        Err(_) => Vec::new(),
    };
    entries.sort();
    let mut code = String::from(
        "/// (file name, source) of every embedded CUDA kernel file.\npub static KERNELS: &[(&str, &str)] = &[\n",
    );
    for (name, path) in &entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let abs = fs::canonicalize(path).unwrap();
        code.push_str(&format!("    ({name:?}, include_str!({:?})),\n", abs.display().to_string()));
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("kernels.rs");
    fs::write(out, code).unwrap();
}
