//! `weather`: an example of a tool that does real downstream work: it calls an HTTP API with a key
//! from its settings, through the platform's client, so the call is a span of its own (a remote
//! subsegment in X-Ray), carries the trace to the API, and is measured by server address. A failing
//! API is a tool error the model can read, never a protocol error.
//!
//! The API it expects: `GET {base_url}/v1/current?city=Paris` with the key in `x-api-key`,
//! answering `{"city": "Paris", "temperature_c": 12.5, "conditions": "sunny"}`.

use std::time::Duration;

use mcp_platform::{
    ClientOptions, ExposeSecret as _, HttpClient, HttpError, Secret,
    reqwest::{StatusCode, Url},
};
use rmcp::{
    handler::server::{tool::schema_for_output, wrapper::Parameters},
    model::{CallToolResult, ContentBlock},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::Toolbox;

/// `[tools.weather]`, `APP__TOOLS__WEATHER__...`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeatherSettings {
    /// The API's base URL, e.g. `https://weather.example.com`; unset, the tool says it is not
    /// configured.
    #[serde(deserialize_with = "http_url")]
    pub base_url: Option<Url>,
    /// The API's key: in ECS from Secrets Manager (`tool_secrets` in infra/README.md), locally
    /// from `dev/secrets.toml` or the environment.
    pub api_key: Option<Secret>,
    /// How long one request to the API may take; a failed idempotent request is tried twice more.
    pub timeout_ms: u64,
}

impl Default for WeatherSettings {
    fn default() -> Self {
        Self {
            base_url: None,
            api_key: None,
            timeout_ms: 3000,
        }
    }
}

/// An `http://` or `https://` URL, or a configuration error naming the key.
fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    match Url::parse(&text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Some(url)),
        _ => Err(serde::de::Error::custom(
            "an http:// or https:// URL such as https://weather.example.com",
        )),
    }
}

/// What the tool needs, built once at start-up.
#[derive(Debug, Clone)]
pub struct Weather {
    client: HttpClient,
    settings: WeatherSettings,
}

impl Weather {
    pub fn new(settings: &WeatherSettings) -> Self {
        let options = ClientOptions {
            timeout: Duration::from_millis(settings.timeout_ms),
            ..ClientOptions::default()
        };
        Self {
            client: mcp_platform::http_client(&options)
                .expect("the HTTP client builds (TLS is installed at start-up)"),
            settings: settings.clone(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeatherArgs {
    /// City name, e.g. "Paris".
    #[schemars(length(min = 1, max = 100))]
    pub city: String,
}

/// The current weather in a city.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Current {
    pub city: String,
    /// Air temperature in degrees Celsius.
    pub temperature_c: f64,
    /// A short description, e.g. "sunny".
    pub conditions: String,
}

#[tool_router(router = weather_router, vis = "pub(super)")]
impl Toolbox {
    #[tool(
        description = "Current weather for a city, from the configured weather API.",
        output_schema = schema_for_output::<Current>(),
        annotations(title = "Weather", read_only_hint = true, open_world_hint = true)
    )]
    async fn weather(&self, Parameters(args): Parameters<WeatherArgs>) -> CallToolResult {
        match self.weather.current(&args.city).await {
            Ok(current) => {
                let text = format!(
                    "{}: {} °C, {}",
                    current.city, current.temperature_c, current.conditions
                );
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = serde_json::to_value(&current).ok();
                result
            }
            Err(problem) => {
                // The line carries the request's ids and the call's span fields by itself.
                tracing::warn!(%problem, "weather: downstream call failed");
                CallToolResult::error(vec![ContentBlock::text(problem)])
            }
        }
    }
}

impl Weather {
    /// Asks the API; a failure is a sentence for the model.
    #[tracing::instrument(name = "weather.current", skip(self))]
    async fn current(&self, city: &str) -> Result<Current, String> {
        let (Some(base_url), Some(api_key)) = (&self.settings.base_url, &self.settings.api_key)
        else {
            return Err(
                "weather is not configured: set APP__TOOLS__WEATHER__BASE_URL and \
                        APP__TOOLS__WEATHER__API_KEY"
                    .into(),
            );
        };
        let url = base_url
            .join("v1/current")
            .map_err(|e| format!("bad weather URL: {e}"))?;
        let response = self
            .client
            .get(url)
            .query(&[("city", city)])
            .header("x-api-key", api_key.expose_secret())
            .send()
            .await
            .map_err(|e| unreachable_answer(&e))?;
        match response.status() {
            status if status.is_success() => response
                .json::<Current>()
                .await
                .map_err(|e| format!("the weather service's answer was not understood: {e}")),
            StatusCode::NOT_FOUND => Err(format!("no weather known for {city:?}")),
            status => Err(format!("the weather service answered {status}")),
        }
    }
}

/// What the model reads when the API could not be asked.
fn unreachable_answer(err: &HttpError) -> String {
    match err {
        HttpError::Reqwest(e) if e.is_timeout() => {
            "the weather service did not answer in time".into()
        }
        _ => format!("the weather service could not be reached: {err}"),
    }
}
