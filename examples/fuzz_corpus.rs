//! Writes a seed corpus for the fuzz targets from valid meshes:
//! `cargo run --example fuzz_corpus --features fuzzing [OUT_DIR]`
//! (default `fuzz/corpus`, one folder per target).

use std::path::{Path, PathBuf};

fn write_all(dir: &Path, inputs: &[Vec<u8>]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (i, input) in inputs.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), input)?;
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("fuzz/corpus"), PathBuf::from);
    // Records of a live mesh, their event bytes alone, a batch, a frontier
    // and a key package.
    write_all(
        &out.join("decode"),
        &meshlog::fuzzing::sample_decode_inputs(),
    )?;
    // The unchanged file and records, and a few single changes of each.
    write_all(&out.join("open"), &meshlog::fuzzing::sample_open_inputs())?;
    // Op strings that write, rotate with changes, merge, fork a feed and
    // sync: both targets read the same ops.
    let ops = meshlog::fuzzing::sample_ops();
    write_all(&out.join("reducer"), &ops)?;
    write_all(&out.join("converge"), &ops)?;
    println!("corpus written to {}", out.display());
    Ok(())
}
