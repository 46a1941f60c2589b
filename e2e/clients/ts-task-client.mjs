// Drives a `report` task end to end with the official TypeScript SDK v2 client
// (@modelcontextprotocol/client) on protocol 2026-07-28, declaring the Tasks extension
// (io.modelcontextprotocol/tasks) in its capabilities; prints what it saw as one JSON object.
//
//   node ts-task-client.mjs --url URL [--token TOKEN] [--seconds N]
//
// Two tasks: one with `confirm` that it polls with tasks/get, answers with tasks/update and reads
// to its result; one it cancels with tasks/cancel. The SDK has no Tasks API: tasks/get, tasks/update
// and tasks/cancel go through its generic `client.request(request, resultSchema)`, which still adds
// the per-request `_meta` envelope (version, client info, capabilities) and the Mcp-Method/Mcp-Name
// headers. Its 2026 codec refuses a `tools/call` result of `resultType: "task"` (a typed
// UNSUPPORTED_RESULT_TYPE error, without the result), so `TasksClient` keeps that one result as it
// passes `_onresponse` (the SDK's hook for inbound responses), and `startTask` reads it from there
// once callTool has refused it.
import { parseArgs } from 'node:util';

import { Client, SdkError, SdkErrorCode, StreamableHTTPClientTransport, specTypeSchemas } from '@modelcontextprotocol/client';

const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    token: { type: 'string' },
    seconds: { type: 'string', default: '1' },
  },
});

/** A Standard Schema (what `client.request` takes) from a predicate over the decoded result. */
function schema(what, check) {
  return {
    '~standard': {
      version: 1,
      vendor: 'e2e',
      validate: (value) => (check(value) ? { value } : { issues: [{ message: `not ${what}: ${JSON.stringify(value)}` }] }),
    },
  };
}

const valid = (name, value) => !specTypeSchemas[name]['~standard'].validate(value).issues;
const isStatus = (s) => valid('TaskStatus', s);
// tasks/get: the task (SEP-2663's DetailedTask); its `result` must be a CallToolResult.
const TaskSchema = schema('a task', (t) => typeof t?.taskId === 'string' && isStatus(t.status)
  && (t.result === undefined || valid('CallToolResult', t.result)));
// tasks/update and tasks/cancel: an empty result.
const AckSchema = schema('an empty result', (r) => r !== null && typeof r === 'object' && !Array.isArray(r));

class TasksClient extends Client {
  /** The last `resultType: "task"` result the server sent, which the SDK itself refuses. */
  createdTask = null;

  _onresponse(response) {
    if (response.result?.resultType === 'task') this.createdTask = response.result;
    super._onresponse(response);
  }

  /** tools/call through the SDK; the CreateTaskResult it refused (checked to be that refusal). */
  async startTask(name, toolArgs) {
    this.createdTask = null;
    try {
      const result = await this.callTool({ name, arguments: toolArgs });
      throw new Error(`expected a task, got a plain result: ${JSON.stringify(result)}`);
    } catch (error) {
      const refused = error instanceof SdkError && error.code === SdkErrorCode.UnsupportedResultType
        && error.data?.resultType === 'task';
      if (!refused || this.createdTask === null) throw error;
      return { task: this.createdTask, refusal: { code: error.code, message: error.message } };
    }
  }

  getTask(taskId) {
    return this.request({ method: 'tasks/get', params: { taskId } }, TaskSchema);
  }

  updateTask(taskId, inputResponses) {
    return this.request({ method: 'tasks/update', params: { taskId, inputResponses } }, AckSchema);
  }

  cancelTask(taskId) {
    return this.request({ method: 'tasks/cancel', params: { taskId } }, AckSchema);
  }

  /**
   * Polls tasks/get at the task's pollIntervalMs until it is terminal (or `until` says stop),
   * answering each input request once with `answer(request)`. Returns the statuses seen (the
   * created one first, repeats folded) and the last task read.
   */
  async follow(created, { answer = null, until = () => false, timeoutMs = 30000 } = {}) {
    const statuses = [created.status];
    const answered = {};
    const deadline = Date.now() + timeoutMs;
    let task = created;
    while (!TERMINAL.has(task.status) && !until(task)) {
      if (Date.now() > deadline) throw new Error(`task ${created.taskId} still ${task.status}`);
      await new Promise((resolve) => setTimeout(resolve, created.pollIntervalMs ?? 500));
      task = await this.getTask(created.taskId);
      if (statuses.at(-1) !== task.status) statuses.push(task.status);
      const open = Object.entries(task.inputRequests ?? {}).filter(([key]) => !(key in answered));
      if (task.status === 'input_required' && open.length > 0) {
        if (!answer) throw new Error(`task ${created.taskId} asks for input: ${JSON.stringify(open)}`);
        const responses = Object.fromEntries(open.map(([key, request]) => [key, answer(request)]));
        Object.assign(answered, responses);
        await this.updateTask(created.taskId, responses);
      }
    }
    return { statuses, task, answered };
  }
}

/** Accepts publishing: the answer a user gives to the report's elicitation (checked as the SDK's types). */
function acceptPublish(request) {
  if (request.method !== 'elicitation/create' || !valid('ElicitRequestParams', request.params)) {
    throw new Error(`not an elicitation: ${JSON.stringify(request)}`);
  }
  const reply = { action: 'accept', content: { publish: true } };
  if (!valid('ElicitResult', reply)) throw new Error('the SDK does not take our elicitation answer');
  return reply;
}

const requestInit = args.token ? { headers: { Authorization: `Bearer ${args.token}` } } : undefined;
const client = new TasksClient({ name: 'e2e-ts-tasks', version: '1.0.0' }, {
  versionNegotiation: { mode: { pin: '2026-07-28' } },
  capabilities: { extensions: { [TASKS_EXTENSION]: {} } },
});
await client.connect(new StreamableHTTPClientTransport(new URL(args.url), { requestInit }));

// 1. A task that asks for input, answered, read to its result.
const seconds = Number(args.seconds);
const started = await client.startTask('report', { title: 'ts sdk', seconds, confirm: true });
let question = null;
const complete = await client.follow(started.task, {
  answer: (request) => {
    question = request;
    return acceptPublish(request);
  },
});

// 2. A long task, cancelled while it works; tasks/get then reads it cancelled.
const long = await client.startTask('report', { title: 'ts sdk cancel', seconds: 600 });
const working = await client.follow(long.task, { until: (t) => t.status === 'working' && t !== long.task });
const cancelAck = await client.cancelTask(long.task.taskId);
const afterCancel = await client.getTask(long.task.taskId);
const protocolVersion = client.getNegotiatedProtocolVersion();
const serverExtensions = Object.keys(client.getServerCapabilities()?.extensions ?? {});
await client.close();

console.log(JSON.stringify({
  protocolVersion,
  serverExtensions,
  refusal: started.refusal,
  complete: {
    created: started.task,
    statuses: complete.statuses,
    question,
    answered: complete.answered,
    task: complete.task,
  },
  cancel: {
    created: long.task,
    statuses: [...working.statuses, afterCancel.status],
    ack: cancelAck,
    task: afterCancel,
  },
}));
