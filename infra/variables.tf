# Everything a user may want to change. Defaults that mirror the service's own defaults
# (ports, lifecycle timings) are checked against platform/config/default.toml by the e2e tests.

# The service's name and region, this stack's one source of them; `cargo generate` writes them. {%- capture identity %}
variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name of the service: the ECR repository, the prefix of every resource, the OTel service.name."
  type        = string
  default     = "mcp-server"
  #{% endcapture %}{{ identity | replace: "mcp-server", project-name | replace: "us-east-1", aws_region }}

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,27}$", var.name))
    error_message = "name: 2-28 lower-case letters, digits or dashes, starting with a letter (it ends up in ALB and target group names)."
  }
}

variable "environment" {
  description = "Deployment environment; becomes deployment.environment.name on all telemetry."
  type        = string
  default     = "prod"
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# --- network -------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR of the VPC; split into two public and two private subnets."
  type        = string
  default     = "10.42.0.0/16"
}

variable "availability_zones" {
  description = "Two zone names to use (e.g. [\"eu-west-1a\", \"eu-west-1b\"]); empty takes the region's first two."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || length(var.availability_zones) == 2
    error_message = "availability_zones: give exactly two zone names, or none."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for both AZs (cheaper, but an AZ outage cuts the other AZ's egress)."
  type        = bool
  default     = false
}

variable "enable_vpc_endpoints" {
  description = "Interface endpoints for ECR, CloudWatch Logs, X-Ray, AMP and SSM plus an S3 gateway endpoint, so AWS API traffic stays off the NAT."
  type        = bool
  default     = false
}

variable "task_egress_cidrs" {
  description = "Where tasks may open HTTPS connections (AWS APIs, the public ECR for the collector image, whatever your tools call)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

# --- edge ----------------------------------------------------------------------------------

variable "domain_name" {
  description = "Public host name (e.g. mcp.example.com). When set: ACM certificate, HTTPS listener and a Route 53 alias record."
  type        = string
  # `cargo generate` writes the domain it was given. {%- capture domain %}
  default = ""
  #{% endcapture %}{{ domain | replace: '""', domain_quoted }}
}

variable "route53_zone_name" {
  description = "Route 53 public hosted zone that holds domain_name; empty means the domain's parent (mcp.example.com -> example.com)."
  type        = string
  default     = ""
}

variable "allow_insecure_http" {
  description = "Serve plain HTTP on port 80 instead of redirecting to HTTPS. Only for trials without a domain: MCP traffic carries bearer tokens."
  type        = bool
  default     = false
}

variable "alb_idle_timeout_s" {
  description = "ALB idle timeout; must outlast the longest tool call (request_timeout_ms)."
  type        = number
  default     = 120
}

variable "alb_deletion_protection" {
  description = "Protect the ALB from deletion (set false before terraform destroy)."
  type        = bool
  default     = true
}

variable "waf_rate_limit_per_5min" {
  description = "Requests one client IP may send in five minutes before the WAF blocks it."
  type        = number
  default     = 3000
}

variable "access_log_retention_days" {
  description = "Days ALB access logs and VPC flow logs are kept in S3."
  type        = number
  default     = 90
}

# --- containers ----------------------------------------------------------------------------

variable "image_tag" {
  description = "Tag of the app image in this stack's ECR repository: `just deploy` passes the pushed git sha, `just tf-apply` the running one. Empty (the default) refuses to plan: a made-up default tag, never pushed, would stop every task."
  type        = string
  default     = ""
}

variable "app_image" {
  description = "Full app image reference; overrides the ECR repository + image_tag (must still be pullable by the execution role)."
  type        = string
  default     = ""
}

variable "collector_image" {
  description = "ADOT collector image, pinned: otel-collector/ecs.yaml uses this release's component names."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.49.0"
}

variable "container_port" {
  description = "Port of the app's public listener (APP__HTTP__ADDR) and of the target group."
  type        = number
  default     = 8080
}

variable "task_cpu" {
  description = "Fargate task CPU units (app + collector)."
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Fargate task memory in MiB (app + collector)."
  type        = number
  default     = 1024
}

variable "rate_limit_per_second" {
  description = "Requests a second one caller (the token's sub, else the client address the ALB saw) may send to one task; 0 turns per-caller limits off. Across the service a caller gets this times the running tasks."
  type        = number
  default     = 50
}

variable "rate_limit_burst" {
  description = "Requests one caller may send to one task at once before rate_limit_per_second applies."
  type        = number
  default     = 200
}

variable "collector_memory" {
  description = "Hard memory limit of the collector sidecar in MiB; its memory_limiter works in percent of it."
  type        = number
  default     = 256
}

variable "trace_sampler" {
  description = "OTEL_TRACES_SAMPLER of the app. parentbased_traceidratio keeps trace_sample_ratio of new traces and follows the caller's decision when a request carries a traceparent; always_on records every request (see the cost trade-off in infra/README.md)."
  type        = string
  default     = "parentbased_traceidratio"

  validation {
    condition = contains(["always_on", "always_off", "traceidratio", "parentbased_always_on",
    "parentbased_always_off", "parentbased_traceidratio"], var.trace_sampler)
    error_message = "trace_sampler: one of the OpenTelemetry SDK samplers (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)."
  }
}

variable "trace_sample_ratio" {
  description = "OTEL_TRACES_SAMPLER_ARG: the share of new traces the *traceidratio samplers keep (0 to 1)."
  type        = number
  default     = 0.1

  validation {
    condition     = var.trace_sample_ratio >= 0 && var.trace_sample_ratio <= 1
    error_message = "trace_sample_ratio: a number from 0 to 1."
  }
}

variable "log_level" {
  description = "APP__LOG__LEVEL (RUST_LOG syntax)."
  type        = string
  default     = "info,rmcp=warn"
}

variable "task_ttl_ms" {
  description = "APP__TASKS__TTL_MS: how long a task (a long-running tool call) is kept from its creation; DynamoDB deletes it after."
  type        = number
  default     = 3600000
  validation {
    condition     = var.task_ttl_ms >= 1000 && var.task_ttl_ms <= 2592000000
    error_message = "task_ttl_ms must be from 1000 (1 s) to 2592000000 (30 days)."
  }
}

variable "task_store_timeout_ms" {
  description = "APP__TASKS__STORE_TIMEOUT_MS: the longest one call to the tasks table may take, the AWS SDK's retries included; also the time after the shutdown grace for marking still-running tasks failed, which the stopTimeout counts."
  type        = number
  default     = 3000
  validation {
    condition     = var.task_store_timeout_ms >= 100 && var.task_store_timeout_ms <= 30000
    error_message = "task_store_timeout_ms must be from 100 to 30000."
  }
}

# --- secrets for the tools (secrets.tf) ------------------------------------------------------

variable "tool_secrets" {
  description = "Secrets for the tools: setting (below [tools], e.g. weather.api_key) -> ARN of a Secrets Manager secret (full ARN, optionally :json-key:version-stage:version-id) or an SSM parameter. Each becomes the app's APP__TOOLS__<SETTING> (weather.api_key -> APP__TOOLS__WEATHER__API_KEY), read by ECS at task start; the execution role may read exactly these."
  type        = map(string)
  default     = {}

  validation {
    # Lower-case segments without a double underscore: the one spelling whose env form maps back.
    condition     = alltrue([for setting in keys(var.tool_secrets) : can(regex("^[a-z][a-z0-9]*(_[a-z0-9]+)*(\\.[a-z][a-z0-9]*(_[a-z0-9]+)*)*$", setting))])
    error_message = "tool_secrets: setting names are dotted paths below [tools] in lower case, e.g. weather.api_key (segments of letters, digits and single underscores; no dashes)."
  }

  validation {
    condition = alltrue([for arn in values(var.tool_secrets) :
      can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}(:[^:]*:[^:]*:[^:]*)?$", arn)) ||
      can(regex("^arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:parameter/[A-Za-z0-9/_.-]+$", arn))
    ])
    error_message = "tool_secrets: values are the full ARN of a Secrets Manager secret (ending in its six-character suffix, optionally followed by :json-key:version-stage:version-id, e.g. ...:secret:weather-AbCdEf:api_key::) or of an SSM parameter (...:parameter/weather/api-key)."
  }
}

variable "tool_secrets_kms_key_arns" {
  description = "Customer-managed KMS keys that encrypt the tool_secrets; the execution role may decrypt with them only through Secrets Manager or SSM. Not needed for the AWS-managed keys (aws/secretsmanager, aws/ssm) or this stack's own key."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.tool_secrets_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", arn))])
    error_message = "tool_secrets_kms_key_arns: key ARNs (arn:aws:kms:<region>:<account>:key/<id>); IAM does not authorise a key by its alias."
  }
}

# --- lifecycle: must agree with the service (see ecs.tf locals) ------------------------------

variable "drain_delay_ms" {
  description = "APP__SHUTDOWN__DRAIN_DELAY_MS: after SIGTERM the app keeps serving with /readyz = 503 this long."
  type        = number
  default     = 5000
}

variable "shutdown_grace_ms" {
  description = "APP__SHUTDOWN__GRACE_MS: then it waits at most this long for in-flight requests."
  type        = number
  default     = 20000
}

variable "request_timeout_ms" {
  description = "APP__HTTP__REQUEST_TIMEOUT_MS: whole-request deadline, so the longest a tool call may run."
  type        = number
  default     = 30000
}

# --- auth (off by default) -----------------------------------------------------------------

variable "auth_mode" {
  description = "APP__AUTH__MODE: none or jwt."
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "jwt"], var.auth_mode)
    error_message = "auth_mode must be none or jwt."
  }
}

variable "auth_resource" {
  description = "APP__AUTH__RESOURCE: canonical URL of this MCP endpoint (JWT audience); empty derives it from the public URL."
  type        = string
  default     = ""
}

variable "auth_issuer" {
  description = "APP__AUTH__ISSUER: accepted token issuer."
  type        = string
  default     = ""
}

variable "auth_jwks_url" {
  description = "APP__AUTH__JWKS_URL: where the issuer's signing keys are published."
  type        = string
  default     = ""
}

variable "auth_required_scopes" {
  description = "APP__AUTH__REQUIRED_SCOPES: scopes every call needs."
  type        = list(string)
  default     = []
}

# --- scaling -------------------------------------------------------------------------------

variable "desired_count" {
  description = "Tasks at first deploy; afterwards autoscaling owns the count."
  type        = number
  default     = 2
}

variable "min_count" {
  description = "Fewest tasks autoscaling may run (keep >= 2 for one per AZ)."
  type        = number
  default     = 2
}

variable "max_count" {
  description = "Most tasks autoscaling may run."
  type        = number
  default     = 10
}

variable "scale_requests_per_target" {
  description = "Target of ALBRequestCountPerTarget (requests per task per minute)."
  type        = number
  default     = 1000
}

variable "scale_cpu_percent" {
  description = "Target average CPU utilisation of the service."
  type        = number
  default     = 60
}

# --- observability -------------------------------------------------------------------------

variable "app_log_retention_days" {
  description = "Retention of the app's CloudWatch log group."
  type        = number
  default     = 365
}

variable "collector_log_retention_days" {
  description = "Retention of the collector's and the WAF's CloudWatch log groups."
  type        = number
  default     = 365
}

variable "alarm_email" {
  description = "When set, an SNS topic with this e-mail subscription receives CloudWatch alarms and AMP alerts."
  type        = string
  default     = ""
}

variable "alarm_5xx_percent" {
  description = "Alarm when 5xx answers (ALB and targets) exceed this percent of requests."
  type        = number
  default     = 1
}

variable "alarm_p99_latency_s" {
  description = "Alarm when the targets' p99 response time exceeds this many seconds."
  type        = number
  default     = 5
}

variable "alarm_cpu_percent" {
  description = "Alarm when the service's average CPU exceeds this percent."
  type        = number
  default     = 80
}

variable "alarm_memory_percent" {
  description = "Alarm when a task's memory exceeds this percent of the task's; capped below the level at which the app nears its own hard limit (see locals.memory_alarm_percent)."
  type        = number
  default     = 80
}

variable "ecr_keep_images" {
  description = "Tagged images the ECR lifecycle policy keeps."
  type        = number
  default     = 30
}
