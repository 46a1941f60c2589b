# infra/ in the shape the deploy workflow sees it, on terraform's built-in terraform_data so that
# a real terraform runs `just tf-bootstrap`, `just publish`, `just deploy` and `just tf-apply`
# offline. Each stand-in is named after what it stands for (aws_ecr_repository.app ->
# terraform_data.aws_ecr_repository_app); e2e/tests/test_infra_workflow.py checks that the
# outputs and variables the recipes use, and the image precondition, agree with infra/.

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "name" {
  type    = string
  default = "some-service"
}

variable "image_tag" {
  type    = string
  default = ""
}

variable "app_image" {
  type    = string
  default = ""
}

resource "terraform_data" "aws_ecr_repository_app" {
  input = { repository_url = "123456789012.dkr.ecr.${var.region}.amazonaws.com/${var.name}" }
}

resource "terraform_data" "aws_ecr_lifecycle_policy_app" {
  input = terraform_data.aws_ecr_repository_app.output.repository_url
}

resource "terraform_data" "aws_ecs_task_definition_this" {
  input = { image = "${terraform_data.aws_ecr_repository_app.output.repository_url}:${var.image_tag}" }

  lifecycle {
    precondition {
      condition     = var.app_image != "" || var.image_tag != ""
      error_message = "No image to run."
    }
  }
}

resource "terraform_data" "aws_ecs_service_this" {
  input = terraform_data.aws_ecs_task_definition_this.output
}

output "ecr_repository_url" {
  value = terraform_data.aws_ecr_repository_app.output.repository_url
}

output "region" {
  value = var.region
}

output "image_tag" {
  value      = var.image_tag
  depends_on = [terraform_data.aws_ecs_service_this]
}
