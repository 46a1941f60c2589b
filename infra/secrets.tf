# Tool secrets: var.tool_secrets (setting -> Secrets Manager secret or SSM parameter ARN) becomes
# the app container's `secrets`, which ECS resolves with the execution role when a task starts,
# and that role's grants on exactly those ARNs. Only locals live here (no resources), so the e2e
# tests evaluate this file with the real terraform core.

locals {
  # tools.weather.api_key is the service's APP__TOOLS__WEATHER__API_KEY.
  app_secrets = [for setting, arn in var.tool_secrets : {
    name      = "APP__TOOLS__${upper(replace(setting, ".", "__"))}"
    valueFrom = arn
  }]

  # Secrets Manager ARNs may end in :json-key:version-stage:version-id; IAM names the secret, the
  # first seven fields.
  tool_secret_arns = distinct([for arn in values(var.tool_secrets) :
  join(":", slice(split(":", arn), 0, 7)) if split(":", arn)[2] == "secretsmanager"])
  tool_parameter_arns = distinct([for arn in values(var.tool_secrets) : arn if split(":", arn)[2] == "ssm"])
  # KMS decrypts for ECS only through the services holding the values, in their regions.
  tool_secret_services = distinct([for arn in values(var.tool_secrets) :
  "${split(":", arn)[2]}.${split(":", arn)[3]}.amazonaws.com"])

  # The execution role's statements for them (iam.tf), by sid; none without tool secrets.
  tool_secret_grants = { for sid, grant in {
    ToolSecretsManagerSecrets = { actions = ["secretsmanager:GetSecretValue"], resources = local.tool_secret_arns, conditions = [] }
    ToolSsmParameters         = { actions = ["ssm:GetParameters"], resources = local.tool_parameter_arns, conditions = [] }
    ToolSecretsDecrypt = {
      actions    = ["kms:Decrypt"]
      resources  = length(var.tool_secrets) > 0 ? var.tool_secrets_kms_key_arns : []
      conditions = [{ test = "StringEquals", variable = "kms:ViaService", values = local.tool_secret_services }]
    }
  } : sid => grant if length(grant.resources) > 0 }
}
