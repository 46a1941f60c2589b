# Where telemetry lands: CloudWatch log groups, the AMP workspace (metrics via the collector's
# remote write, alert rules from dashboards/alerts), the CloudWatch dashboard and alarms, and an
# optional SNS topic that both alarms and AMP alerts notify.

resource "aws_cloudwatch_log_group" "app" {
  name              = "/ecs/${var.name}/app"
  retention_in_days = var.app_log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_cloudwatch_log_group" "collector" {
  name              = "/ecs/${var.name}/otel-collector"
  retention_in_days = var.collector_log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

# WAF requires the aws-waf-logs- prefix.
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.collector_log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_prometheus_workspace" "this" {
  alias = var.name
}

locals {
  alerts_dir = "${path.module}/../dashboards/alerts"
}

# One rule namespace per alert file, named after it (api.rules.yaml -> api).
resource "aws_prometheus_rule_group_namespace" "alerts" {
  for_each = fileset(local.alerts_dir, "*.rules.yaml")

  name         = trimsuffix(each.value, ".rules.yaml")
  workspace_id = aws_prometheus_workspace.this.id
  data         = file("${local.alerts_dir}/${each.value}")
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = templatefile("${path.module}/../dashboards/cloudwatch/dashboard.json.tftpl", {
    region                  = var.region
    alb_arn_suffix          = aws_lb.this.arn_suffix
    target_group_arn_suffix = aws_lb_target_group.app.arn_suffix
    cluster_name            = aws_ecs_cluster.this.name
    service_name            = aws_ecs_service.this.name
    app_log_group           = aws_cloudwatch_log_group.app.name
    collector_log_group     = aws_cloudwatch_log_group.collector.name
    tasks_table             = aws_dynamodb_table.tasks.name
  })
}

# --- notifications (only with alarm_email) ---------------------------------------------------

locals {
  # When the app is at 90 % of its hard limit the task is at least at this percent of its memory,
  # so the alarm has fired before the kernel kills the app.
  memory_alarm_percent = min(var.alarm_memory_percent, floor(90 * local.app_memory_mib / var.task_memory))
  notify               = var.alarm_email != ""
  alarm_actions        = local.notify ? [aws_sns_topic.alarms[0].arn] : []
}

resource "aws_sns_topic" "alarms" {
  count = local.notify ? 1 : 0

  name              = "${var.name}-alarms"
  kms_master_key_id = aws_kms_key.this.id
}

data "aws_iam_policy_document" "alarms_topic" {
  count = local.notify ? 1 : 0

  statement {
    sid       = "CloudWatchAlarms"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms[0].arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }

  # The AMP alert manager reads the topic's attributes before it publishes; only this workspace.
  statement {
    sid       = "AmpAlertManager"
    actions   = ["sns:Publish", "sns:GetTopicAttributes"]
    resources = [aws_sns_topic.alarms[0].arn]
    principals {
      type        = "Service"
      identifiers = ["aps.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_prometheus_workspace.this.arn]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  count = local.notify ? 1 : 0

  arn    = aws_sns_topic.alarms[0].arn
  policy = data.aws_iam_policy_document.alarms_topic[0].json
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = local.notify ? 1 : 0

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_prometheus_alert_manager_definition" "this" {
  count = local.notify ? 1 : 0

  workspace_id = aws_prometheus_workspace.this.id
  definition = yamlencode({
    alertmanager_config = yamlencode({
      route     = { receiver = "sns", group_by = ["alertname"] }
      receivers = [{ name = "sns", sns_configs = [{ topic_arn = aws_sns_topic.alarms[0].arn, sigv4 = { region = var.region } }] }]
    })
  })
}

# --- CloudWatch alarms: the edge's view, independent of the collector -------------------------

locals {
  alb_dimensions = { LoadBalancer = aws_lb.this.arn_suffix, TargetGroup = aws_lb_target_group.app.arn_suffix }
  # The service's name, not its resource: the service names the 5xx and latency alarms as its
  # deployment alarms, so no alarm may depend on it.
  ecs_dimensions = { ClusterName = aws_ecs_cluster.this.name, ServiceName = var.name }
}

resource "aws_cloudwatch_metric_alarm" "http_5xx_rate" {
  alarm_name          = "${var.name}-5xx-rate"
  alarm_description   = "More than ${var.alarm_5xx_percent}% of requests answered 5xx (by the ALB or the tasks)."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_5xx_percent
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests"
    label       = "5xx percent"
    return_data = true
  }

  metric_query {
    id = "target5xx"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = aws_lb.this.arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "elb5xx"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = aws_lb.this.arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = aws_lb.this.arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
}

# Single-metric alarms, one per entry: the edge (ALB) and the service's resources.
locals {
  metric_alarms = {
    p99-latency = {
      description = "Target p99 response time above ${var.alarm_p99_latency_s} s."
      namespace   = "AWS/ApplicationELB", metric = "TargetResponseTime", dimensions = local.alb_dimensions
      statistic   = null, extended_statistic = "p99", threshold = var.alarm_p99_latency_s
      periods     = 5, datapoints = 3, missing = "notBreaching"
    }
    unhealthy-hosts = {
      description = "A task fails the /readyz health check."
      namespace   = "AWS/ApplicationELB", metric = "UnHealthyHostCount", dimensions = local.alb_dimensions
      statistic   = "Maximum", extended_statistic = null, threshold = 0
      periods     = 3, datapoints = 3, missing = "notBreaching"
    }
    cpu = {
      description = "Service CPU above ${var.alarm_cpu_percent}% (autoscaling is not keeping up or max_count is reached)."
      namespace   = "AWS/ECS", metric = "CPUUtilization", dimensions = local.ecs_dimensions
      statistic   = "Average", extended_statistic = null, threshold = var.alarm_cpu_percent
      periods     = 5, datapoints = 4, missing = "missing"
    }
    # The kernel kills the app at its hard limit within seconds of a surge: the busiest task's
    # minute (Maximum) is alarmed at once, at a level the task reaches before the app is at 90 %
    # of its limit (the task's use is the app's plus the collector's).
    memory = {
      description = "Task memory above ${local.memory_alarm_percent}% (the app nears its hard limit at ${floor(100 * local.app_memory_mib / var.task_memory)}%)."
      namespace   = "AWS/ECS", metric = "MemoryUtilization", dimensions = local.ecs_dimensions
      statistic   = "Maximum", extended_statistic = null, threshold = local.memory_alarm_percent
      periods     = 1, datapoints = 1, missing = "missing"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "metric" {
  for_each = local.metric_alarms

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  extended_statistic  = each.value.extended_statistic
  period              = 60
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  evaluation_periods  = each.value.periods
  datapoints_to_alarm = each.value.datapoints
  treat_missing_data  = each.value.missing
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
