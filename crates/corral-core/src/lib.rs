//! Corral's domain model: identifiers, container and image records, their states and the
//! error classification every other crate reports.
//!
//! This crate does no I/O: no files, sockets, processes or clocks beyond `chrono::Utc::now`
//! in constructors that the caller may bypass. Everything here is plain data.
#![forbid(unsafe_code)]

pub mod container;
pub mod duration;
pub mod error;
pub mod event;
pub mod health;
pub mod id;
pub mod image;
pub mod volume;

pub use container::{
    ContainerRecord, ContainerSpec, ContainerState, ContainerStatus, DeviceMapping, EndpointSpec,
    HostSpec, LogConfig, MountSpec, MountType, RestartPolicy,
};
pub use error::ErrorKind;
pub use event::Event;
pub use health::{Health, HealthConfig, HealthResult, HealthStatus};
pub use id::{ContainerId, ContainerName, IdError};
pub use image::{ImageId, ImageRecord, LayerRecord};
pub use volume::{VolumeMount, VolumeRecord};
