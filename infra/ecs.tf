# ECS cluster, the task (app + ADOT collector sidecar) and the service behind the ALB.

locals {
  # How a task behind the ALB stops (ECS): deregister from the target group and wait
  # deregistration_delay, then SIGTERM. The app then keeps serving with /readyz = 503 for
  # drain_delay, waits up to shutdown_grace for in-flight requests, flushes telemetry and exits;
  # ECS sends SIGKILL at stopTimeout. Tasks (long-running tool calls) still running at the end
  # of the grace are marked failed in the tasks table: one store call, task_store_timeout_ms.
  telemetry_flush_s = 5
  # Drain + grace + the tasks' last write + the flush budget, plus 1 s slack; Fargate allows at
  # most 120 (precondition below).
  stop_timeout_s = ceil((var.drain_delay_ms + var.shutdown_grace_ms + var.task_store_timeout_ms) / 1000) + local.telemetry_flush_s + 1
  # Deregistration comes before SIGTERM, so the ALB's wait must cover the longest request it may
  # already have routed (the request timeout). When SIGTERM arrives together with deregistration
  # (a Fargate Spot interruption), the app serves for drain + grace, and the ALB must not cut
  # connections before that either. Rule: max(request timeout, drain + grace), in whole seconds.
  deregistration_delay_s = ceil(max(var.request_timeout_ms, var.drain_delay_ms + var.shutdown_grace_ms) / 1000)

  # The task's memory, split in one place: the collector's hard limit, the app's the rest (a hard
  # limit too, so the app's own cgroup shows it), and the app's budget for buffered requests the
  # share of it the binary's default takes (BUDGET_FRACTION in platform/src/http/memory_limit.rs;
  # a test checks they agree), given explicitly so the task definition states it.
  app_memory_mib      = var.task_memory - var.collector_memory
  memory_budget_share = 0.35
  memory_budget_bytes = floor(local.app_memory_mib * 1048576 * local.memory_budget_share)
  # Both containers' log drivers: a stalled CloudWatch Logs stream fills this buffer and then drops
  # lines in the driver (the app counts its own drops) instead of blocking the container's stdout.
  # Sized for over 10 s of the app's measured output at full load (see infra/README.md).
  log_mode            = "non-blocking"
  log_max_buffer_size = "32m"

  app_image        = var.app_image != "" ? var.app_image : "${aws_ecr_repository.app.repository_url}:${var.image_tag}"
  collector_config = file("${path.module}/../otel-collector/ecs.yaml")

  app_environment = {
    APP__HTTP__ADDR                = "0.0.0.0:${var.container_port}"
    APP__HTTP__ALLOWED_HOSTS       = local.public_host
    APP__HTTP__REQUEST_TIMEOUT_MS  = tostring(var.request_timeout_ms)
    APP__HTTP__MEMORY_BUDGET_BYTES = tostring(local.memory_budget_bytes)
    # The ALB appends the address it was connected from to X-Forwarded-For: the caller's key.
    APP__HTTP__TRUSTED_PROXY_HOPS    = "1"
    APP__HTTP__RATE_LIMIT_PER_SECOND = tostring(var.rate_limit_per_second)
    APP__HTTP__RATE_LIMIT_BURST      = tostring(var.rate_limit_burst)
    APP__SHUTDOWN__DRAIN_DELAY_MS    = tostring(var.drain_delay_ms)
    APP__SHUTDOWN__GRACE_MS          = tostring(var.shutdown_grace_ms)
    APP__LOG__FORMAT                 = "json"
    APP__LOG__LEVEL                  = var.log_level
    APP__TASKS__STORE                = "dynamodb"
    APP__TASKS__TABLE                = aws_dynamodb_table.tasks.name
    APP__TASKS__TTL_MS               = tostring(var.task_ttl_ms)
    APP__TASKS__STORE_TIMEOUT_MS     = tostring(var.task_store_timeout_ms)
    # Auth stays off unless auth_mode = jwt; empty values are not sent (see environment below).
    APP__AUTH__MODE             = var.auth_mode
    APP__AUTH__RESOURCE         = var.auth_resource != "" ? var.auth_resource : "${local.public_url}/mcp"
    APP__AUTH__ISSUER           = var.auth_issuer
    APP__AUTH__JWKS_URL         = var.auth_jwks_url
    APP__AUTH__REQUIRED_SCOPES  = join(",", var.auth_required_scopes)
    OTEL_SERVICE_NAME           = var.name
    OTEL_RESOURCE_ATTRIBUTES    = "deployment.environment.name=${var.environment}"
    OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:4318"
    OTEL_EXPORTER_OTLP_PROTOCOL = "http/protobuf"
    OTEL_TRACES_SAMPLER         = var.trace_sampler
    OTEL_TRACES_SAMPLER_ARG     = endswith(var.trace_sampler, "traceidratio") ? tostring(var.trace_sample_ratio) : ""

    # The header-read timer also runs while a kept-alive connection waits for its next request:
    # it must outlast the ALB's idle timeout, or the service closes connections the ALB is about
    # to reuse (sporadic 502s).
    APP__HTTP__HEADER_READ_TIMEOUT_MS = tostring((var.alb_idle_timeout_s + 5) * 1000)
  }

  collector_environment = {
    AWS_REGION           = var.region
    AMP_REMOTE_WRITE_URL = "${aws_prometheus_workspace.this.prometheus_endpoint}api/v1/remote_write"
  }

  app_container = {
    name      = "app"
    image     = local.app_image
    essential = true
    memory    = local.app_memory_mib
    # The distroless image's nonroot user; with a read-only root the app writes nowhere.
    user                   = "65532:65532"
    readonlyRootFilesystem = true
    portMappings           = [{ name = "http", containerPort = var.container_port, protocol = "tcp", appProtocol = "http" }]
    # ECS drops empty-valued entries from what it stores, so sending them would make every plan
    # differ and register a new revision; the service reads an unset variable as empty anyway.
    environment = [for k, v in local.app_environment : { name = k, value = v } if v != ""]
    # The tools' secrets (secrets.tf); null sends none (the provider reads this JSON into ECS's types).
    secrets     = length(local.app_secrets) > 0 ? local.app_secrets : null
    stopTimeout = local.stop_timeout_s
    # No shell or curl in the image: the binary probes its own /livez.
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/service", "healthcheck"]
      interval    = 10
      timeout     = 5
      retries     = 3
      startPeriod = 10
    }
    # Spans from the first request need a live collector; shutdown runs in reverse, so the
    # collector outlives the app's final flush.
    dependsOn = [{ containerName = local.collector_container.name, condition = "HEALTHY" }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.app.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "app"
        mode                  = local.log_mode
        max-buffer-size       = local.log_max_buffer_size
      }
    }
  }

  collector_container = {
    name                   = "otel-collector"
    image                  = var.collector_image
    essential              = true
    memory                 = var.collector_memory
    readonlyRootFilesystem = true
    environment            = [for k, v in local.collector_environment : { name = k, value = v }]
    secrets                = [{ name = "AOT_CONFIG_CONTENT", valueFrom = aws_ssm_parameter.collector_config.arn }]
    stopTimeout            = 10
    healthCheck = {
      command     = ["CMD", "/healthcheck"]
      interval    = 5
      timeout     = 5
      retries     = 5
      startPeriod = 5
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.collector.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "otel-collector"
        mode                  = local.log_mode
        max-buffer-size       = local.log_max_buffer_size
      }
    }
  }
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ssm_parameter" "collector_config" {
  name        = "/${var.name}/otel-collector/config"
  description = "ADOT collector config (otel-collector/ecs.yaml), read into AOT_CONFIG_CONTENT"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = local.collector_config
  tier        = length(local.collector_config) > 4096 ? "Advanced" : "Standard"
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode([local.app_container, local.collector_container])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  lifecycle {
    precondition {
      condition     = var.app_image != "" || var.image_tag != ""
      error_message = "No image to run: `just deploy` pushes one and passes its tag; `just tf-apply` passes the running one (or give -var image_tag=<a pushed tag>)."
    }
    precondition {
      condition     = local.app_memory_mib >= 256
      error_message = "task_memory - collector_memory leaves the app less than 256 MiB."
    }
    precondition {
      condition     = local.stop_timeout_s <= 120
      error_message = "drain_delay_ms + shutdown_grace_ms + task_store_timeout_ms + the telemetry flush budget exceed Fargate's 120 s stopTimeout."
    }
  }
}

resource "aws_ecs_service" "this" {
  name                              = var.name
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.this.arn
  desired_count                     = var.desired_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = 30
  enable_ecs_managed_tags           = true
  propagate_tags                    = "SERVICE"
  wait_for_steady_state             = true

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  # Tasks that fail to start or to pass health checks trip the circuit breaker; healthy tasks
  # that answer wrongly or slowly raise the edge's 5xx or latency alarm, which rolls the
  # deployment back while it runs.
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  alarms {
    alarm_names = [aws_cloudwatch_metric_alarm.http_5xx_rate.alarm_name, aws_cloudwatch_metric_alarm.metric["p99-latency"].alarm_name]
    enable      = true
    rollback    = true
  }

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.app.arn
    container_name   = local.app_container.name
    container_port   = var.container_port
  }

  lifecycle {
    # Autoscaling owns the count after the first deploy.
    ignore_changes = [desired_count]

    precondition {
      condition     = var.min_count <= var.desired_count && var.desired_count <= var.max_count
      error_message = "Need min_count <= desired_count <= max_count."
    }
  }

  # The target group must belong to a listener before a service can register into it, and the
  # first tasks must not start before their roles may pull, log and export.
  depends_on = [aws_lb_listener.http, aws_lb_listener.https, aws_iam_role_policy.execution, aws_iam_role_policy.task, aws_iam_role_policy.tasks_table]
}
