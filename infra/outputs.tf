output "mcp_endpoint" {
  description = "URL MCP clients connect to."
  value       = "${local.public_url}/mcp"
}

output "amp_workspace_id" {
  description = "Amazon Managed Prometheus workspace (query it from Amazon Managed Grafana or awscurl)."
  value       = aws_prometheus_workspace.this.id
}

output "amp_query_url" {
  description = "Prometheus query endpoint of the workspace."
  value       = "${aws_prometheus_workspace.this.prometheus_endpoint}api/v1/query"
}

output "dashboard_url" {
  description = "CloudWatch dashboard of the service."
  value       = "https://${var.region}.console.aws.amazon.com/cloudwatch/home?region=${var.region}#dashboards/dashboard/${aws_cloudwatch_dashboard.this.dashboard_name}"
}

output "ecr_repository_url" {
  description = "Push app images here (`just publish`)."
  value       = aws_ecr_repository.app.repository_url
}

output "region" {
  description = "Region of the stack."
  value       = var.region
}

output "image_tag" {
  description = "Tag of the app image the service runs (`just tf-apply` keeps it)."
  value       = var.image_tag
  # Written only once the service is steady on it: a deployment the circuit breaker rolls back
  # fails the apply and leaves the previous tag here.
  depends_on = [aws_ecs_service.this]
}

output "cluster_name" {
  description = "ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "ECS service."
  value       = aws_ecs_service.this.name
}

output "app_log_group" {
  description = "CloudWatch log group of the app container."
  value       = aws_cloudwatch_log_group.app.name
}

output "traces_url" {
  description = "X-Ray trace search for this service."
  value       = "https://${var.region}.console.aws.amazon.com/cloudwatch/home?region=${var.region}#xray:traces/query"
}
