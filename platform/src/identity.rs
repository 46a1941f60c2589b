//! Which service this is: its name and version, from its own crate (see [`crate::service!`]).
//! Everything that names the service (`serverInfo`, `service.name`, the tracer, the build-info
//! metric, the log filter) reads it from here, so renaming the crate renames the service.

/// A service's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The package name (`acme-weather`): `serverInfo.name`, `service.name`.
    pub name: &'static str,
    /// The crate name as Rust spells it (`acme_weather`): the target prefix of its log lines
    /// and spans.
    pub crate_name: &'static str,
    pub version: &'static str,
}

/// The identity of the crate this is written in: `const SERVICE: Service = mcp_platform::service!();`
#[macro_export]
macro_rules! service {
    () => {
        $crate::Service {
            name: env!("CARGO_PKG_NAME"),
            crate_name: env!("CARGO_CRATE_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        }
    };
}

/// The platform's own crate name: the target prefix of the platform's spans and log lines.
pub(crate) const PLATFORM_CRATE: &str = env!("CARGO_CRATE_NAME");
