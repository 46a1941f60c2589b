# Target tracking on two signals: requests per task (MCP calls are mostly I/O bound) and CPU.
# Scale-out happens when either asks for it, scale-in only when both allow it.

resource "aws_appautoscaling_target" "service" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_count
  max_capacity       = var.max_count
}

locals {
  scaling_targets = {
    requests-per-target = {
      metric = "ALBRequestCountPerTarget", target = var.scale_requests_per_target
      label  = "${aws_lb.this.arn_suffix}/${aws_lb_target_group.app.arn_suffix}"
    }
    cpu = { metric = "ECSServiceAverageCPUUtilization", target = var.scale_cpu_percent, label = null }
  }
}

resource "aws_appautoscaling_policy" "target_tracking" {
  for_each = local.scaling_targets

  name               = "${var.name}-${each.key}"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service.service_namespace
  resource_id        = aws_appautoscaling_target.service.resource_id
  scalable_dimension = aws_appautoscaling_target.service.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = each.value.target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = each.value.metric
      resource_label         = each.value.label
    }
  }
}
