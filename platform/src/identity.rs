//! Which service this is: its name and version, from its own crate (see [`crate::service!`]).
//! Everything that names the service (`serverInfo`, `service.name`, the tracer, the build-info
//! metric) reads it from here, so renaming the crate renames the service.

/// A service's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The package name (`acme-weather`): `serverInfo.name`, `service.name`.
    pub name: &'static str,
    pub version: &'static str,
}

/// The identity of the crate this is written in: `const SERVICE: Service = mcp_platform::service!();`
#[macro_export]
macro_rules! service {
    () => {
        $crate::Service {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        }
    };
}
