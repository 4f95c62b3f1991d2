//! The per-test fixture: a registry with a pushed busybox image and the engine under test.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};

use corral_testkit::{
    docker, docker_with, init_tracing, require_root, BusyboxImage, DockerOpts, ManifestFormat,
    OciLayout, Output, Registry, Subject,
};

/// One test's world. `Drop` removes the containers and images the test registered, then
/// stops the engine (which sweeps its state) and the registry.
pub(crate) struct Env {
    containers: RefCell<Vec<String>>,
    images: RefCell<Vec<String>>,
    pub(crate) subject: Subject,
    pub(crate) registry: Registry,
    /// The default busybox image, already pulled (`127.0.0.1:PORT/busybox:latest`).
    pub(crate) image: String,
    /// The layout `image` was pushed from.
    pub(crate) layout: OciLayout,
}

impl Env {
    /// Registry, busybox pushed as OCI `busybox:latest`, engine started, image pulled.
    pub(crate) fn new() -> Env {
        let env = Env::unpulled();
        env.docker(&["pull", "-q", &env.image]).ok();
        env
    }

    /// Like [`Env::new`] but the default image is only in the registry, not pulled.
    pub(crate) fn unpulled() -> Env {
        Env::unpulled_with(Subject::start)
    }

    /// Like [`Env::new`] with the engine started by `start` (given the registries to trust).
    pub(crate) fn new_with(start: impl FnOnce(&[String]) -> anyhow::Result<Subject>) -> Env {
        let env = Env::unpulled_with(start);
        env.docker(&["pull", "-q", &env.image]).ok();
        env
    }

    fn unpulled_with(start: impl FnOnce(&[String]) -> anyhow::Result<Subject>) -> Env {
        require_root();
        init_tracing();
        let registry = Registry::start().expect("start registry");
        let layout = BusyboxImage::new()
            .build_temp()
            .expect("build busybox image");
        let image = registry
            .push_oci_layout(layout.dir(), "busybox:latest", ManifestFormat::Oci)
            .expect("push busybox");
        let subject = start(&[registry.host()]).expect("start engine under test");
        Env {
            containers: RefCell::new(Vec::new()),
            images: RefCell::new(Vec::new()),
            subject,
            registry,
            image,
            layout,
        }
    }

    /// `docker ARGS` against the engine.
    pub(crate) fn docker(&self, args: &[&str]) -> Output {
        docker(&self.subject, args)
    }

    /// `docker ARGS` with `stdin` piped in.
    pub(crate) fn docker_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        docker_with(
            &self.subject,
            args,
            DockerOpts {
                stdin: Some(stdin),
                ..DockerOpts::default()
            },
        )
    }

    /// A unique container name, removed (`rm -f`) when the test ends.
    pub(crate) fn name(&self, base: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = format!(
            "e2e-{base}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.containers.borrow_mut().push(n.clone());
        n
    }

    /// Registers an image reference or id for removal.
    pub(crate) fn track_image(&self, image: &str) {
        self.images.borrow_mut().push(image.to_owned());
    }

    /// Builds `img`, pushes it as `name_tag` and returns the reference (not pulled).
    pub(crate) fn push(&self, img: BusyboxImage, name_tag: &str, format: ManifestFormat) -> String {
        let layout = img.build_temp().expect("build image");
        self.registry
            .push_oci_layout(layout.dir(), name_tag, format)
            .expect("push image")
    }

    /// Builds, pushes and pulls `img`; returns its reference.
    pub(crate) fn pull(&self, img: BusyboxImage, name_tag: &str) -> String {
        let r = self.push(img, name_tag, ManifestFormat::Oci);
        self.docker(&["pull", "-q", &r]).ok();
        self.track_image(&r);
        r
    }

    /// `docker run --rm --network none IMAGE ARGS...` output (the default image).
    pub(crate) fn run_sh(&self, script: &str) -> Output {
        self.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            &self.image,
            "sh",
            "-c",
            script,
        ])
    }

    /// `docker inspect -f FORMAT TARGET`, trimmed; panics when it fails.
    pub(crate) fn inspect(&self, format: &str, target: &str) -> String {
        self.docker(&["inspect", "-f", format, target])
            .ok()
            .out()
            .to_owned()
    }

    /// Starts a detached `sleep` container with extra `run` flags and returns its name.
    pub(crate) fn sleeper(&self, base: &str, flags: &[&str]) -> String {
        let name = self.name(base);
        let mut args = vec!["run", "-d", "--network", "none", "--name", name.as_str()];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[self.image.as_str(), "sleep", "1000"]);
        self.docker(&args).ok();
        name
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for c in self.containers.borrow().iter().rev() {
            let _ = docker(&self.subject, &["rm", "-f", "-v", c]);
        }
        for i in self.images.borrow().iter().rev() {
            let _ = docker(&self.subject, &["rmi", "-f", i]);
        }
    }
}

/// Asserts that `haystack` contains `needle`, showing both on failure.
#[track_caller]
pub(crate) fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected to find {needle:?} in:\n{haystack}"
    );
}
