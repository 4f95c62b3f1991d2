//! Layer unpacking: a plain and a gzip layer tar imported into a fresh layer store (the
//! path of `docker load`/`import` and, after the digest check, of every pulled layer).
#![allow(missing_docs, clippy::unwrap_used)]

use std::io::Write;

use corral_image::LayerStore;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// A layer like a small distro's: `dirs` directories of `files` files of `size` bytes, a
/// symlink per directory and a whiteout.
fn layer_tar(dirs: usize, files: usize, size: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let body: Vec<u8> = (0..size)
        .map(|i| u8::try_from(i * 31 % 251).unwrap())
        .collect();
    for d in 0..dirs {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        builder
            .append_data(&mut header, format!("usr/lib/d{d}/"), std::io::empty())
            .unwrap();
        for f in 0..files {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_size(size as u64);
            builder
                .append_data(&mut header, format!("usr/lib/d{d}/f{f}"), body.as_slice())
                .unwrap();
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder
            .append_link(&mut header, format!("usr/lib/d{d}/link"), "f0")
            .unwrap();
    }
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "usr/lib/.wh.gone", std::io::empty())
        .unwrap();
    builder.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn unpack(c: &mut Criterion) {
    let plain = layer_tar(20, 25, 4096);
    let gz = gzip(&plain);
    let mut group = c.benchmark_group("layer_import");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(plain.len() as u64));
    for (name, data) in [("tar_500x4k", &plain), ("gzip_500x4k", &gz)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap();
                    let store = LayerStore::open(dir.path()).unwrap();
                    (dir, store)
                },
                |(dir, store)| {
                    let layer = store.import(data.as_slice()).unwrap();
                    assert!(layer.extracted);
                    drop(store);
                    dir
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, unpack);
criterion_main!(benches);
