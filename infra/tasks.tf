# Tasks (long-running tool calls, the MCP Tasks extension): their state lives in one DynamoDB
# table every replica reads, so any task of the service answers tasks/get, tasks/update and
# tasks/cancel, and a task survives the replica that accepted it being replaced. One item per
# task, keyed by task_id; DynamoDB deletes items after their expires_at (the task's TTL).

resource "aws_dynamodb_table" "tasks" {
  name                        = "${var.name}-tasks"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "task_id"
  deletion_protection_enabled = true

  attribute {
    name = "task_id"
    type = "S"
  }

  # Epoch seconds of the task's expiry (createdAt + ttlMs), written by the service.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }
}

# The containers may read and write items of this table only: no scans, no deletes (expiry does
# that), no table operations.
data "aws_iam_policy_document" "tasks_table" {
  statement {
    sid       = "TaskItems"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.tasks.arn]
  }

  statement {
    sid       = "TaskItemsKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "tasks_table" {
  name   = "tasks-table"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.tasks_table.json
}
