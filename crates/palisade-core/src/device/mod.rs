//! Devices: the registry of the devices each user logs in from (keyed fingerprints, never raw
//! headers), their trust levels and approval, and the fingerprint a session is bound to.
//!
//! # Layout
//! - [`model`]: ids, trust levels, records and the checks on what clients say about a device.
//! - [`service`]: fingerprints, the registry's use cases, and the session binding check.

pub mod model;
pub mod service;

pub use model::{DeviceFingerprint, DeviceId, DeviceRecord, DeviceSeen, DeviceUpdate, TrustLevel, parse_device_name};
pub use service::DeviceService;
