//! The service's tests: its own binary (started as ECS would, on loopback port 0) called with
//! rmcp's client and the smoke check; the platform's behaviour is the platform's tests' business.
//! One test binary, one module per tool (`just new-tool` adds its module here).

mod common;
mod tools;
/* The example tools' tests: `cargo generate` keeps them with the tools. {% if keep_example_tools %} */
mod examples;
/* {% endif %} */
// `just new-tool` adds a tool's test module above this line.
