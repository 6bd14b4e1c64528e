// run.mjs runs one execution of a state machine with aws-local-stepfunctions,
// for internal/testenv/sfn (Go). Usage: node run.mjs config.json
//
// config.json: {"definition": <ASL>, "input": <any>,
//   "invokeURL": "http://127.0.0.1:PORT/invoke", "retryIntervalMillis": <number|null>,
//   "stateRetryIntervalMillis": {<state>: <number>}, "executionId": <string>}
//
// Every Task whose Resource is arn:aws:states:::lambda:invoke, at any depth
// (Map ItemProcessor/Iterator, Parallel Branches), is served by POSTing
// {"state", "payload", "function"} to invokeURL, which answers {"payload": ...}
// or {"error": {"type", "message"}}. A Task of an AWS SDK integration
// (arn:aws:states:::aws-sdk:SERVICE:ACTION) is served the same way, with the
// Task's effective parameters as "payload", the Resource as "function", and
// the answer's payload as the Task's result (the API's response). Any other
// Task Resource is refused: the interpreter would call AWS.
//
// The execution's context object has Execution.Id and Execution.Name (config
// "executionId", or a made-up one) and Execution.StartTime.
//
// Where the interpreter differs from AWS, the definition is adjusted before
// the run (the validation sees it unchanged):
//   - A Task without TimeoutSeconds(Path) times out after 60 s in the
//     interpreter but has no practical limit in AWS (99999999 s): it gets
//     MAX_TIMEOUT_SECONDS, the longest a Node timer allows.
//   - A DISTRIBUTED Map whose iteration fails fails in AWS with
//     States.ExceedToleratedFailureThreshold (the tolerated failure threshold
//     defaults to 0), not with the iteration's error: its ItemProcessor is
//     wrapped so the interpreter reports the same. ToleratedFailure* fields
//     are not emulated and are refused.
//   - When a Map fails, the interpreter aborts its other iterations, but an
//     aborted iteration whose Task then fails is retried at once (its retry
//     sleep ends on the abort). In AWS a stopped execution retries nothing:
//     each execution's abort signal is kept in an AsyncLocalStorage, and a
//     handler of an aborted execution fails without invoking.
//
// stdout gets exactly one JSON line: {"output": ...} when the execution
// succeeds, {"error": {"name", "cause"}} when it fails; the exit status is 0
// in both cases. A non-zero exit status means the harness itself failed
// (unreadable config, invalid definition, unsupported feature); the reason is
// on stderr. With SFN_DEBUG set, the execution's events go to stderr too.

// aws-local-stepfunctions 3 needs Promise.withResolvers (Node 22); Node 20 lacks it. The package is
// imported dynamically in main, after this line (static imports would run first).
Promise.withResolvers ??= function () { let resolve, reject; const promise = new this((a, b) => { resolve = a; reject = b; }); return { promise, resolve, reject }; };

import { AsyncLocalStorage } from 'node:async_hooks';
import { readFile } from 'node:fs/promises';
import http from 'node:http';

const LAMBDA_INVOKE = 'arn:aws:states:::lambda:invoke';
const AWS_SDK = 'arn:aws:states:::aws-sdk:';
// setTimeout fires at once (with a warning) past 2^31-1 ms.
const MAX_TIMEOUT_SECONDS = Math.floor((2 ** 31 - 1) / 1000);
const WRAPPER_STATE = 'sfn-harness: map run';
const THRESHOLD_STATE = 'sfn-harness: tolerated failure threshold exceeded';
const THRESHOLD_ERROR = 'States.ExceedToleratedFailureThreshold';
const THRESHOLD_CAUSE = 'The specified tolerated failure threshold was exceeded';

const debug = process.env.SFN_DEBUG ? (...args) => console.error('sfn:', ...args) : () => {};

class HarnessError extends Error {}

// forEachState calls fn(name, state) for every state of a definition, nested
// ones included.
function forEachState(definition, fn) {
  for (const [name, state] of Object.entries(definition.States ?? {})) {
    fn(name, state);
    for (const nested of [state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])]) {
      if (nested) forEachState(nested, fn);
    }
  }
}

// adjust applies the AWS behaviours described above to a copy of definition.
function adjust(definition) {
  const copy = structuredClone(definition);
  forEachState(copy, (name, state) => {
    if (state.Type === 'Task' && state.TimeoutSeconds === undefined && state.TimeoutSecondsPath === undefined) {
      state.TimeoutSeconds = MAX_TIMEOUT_SECONDS;
    }
    if (state.Type === 'Task' && state.TimeoutSeconds > MAX_TIMEOUT_SECONDS) {
      state.TimeoutSeconds = MAX_TIMEOUT_SECONDS;
    }
    if (state.Type === 'Map' && state.ItemProcessor?.ProcessorConfig?.Mode === 'DISTRIBUTED') {
      for (const field of ['ToleratedFailurePercentage', 'ToleratedFailurePercentagePath', 'ToleratedFailureCount', 'ToleratedFailureCountPath', 'ItemReader', 'ItemBatcher', 'ResultWriter']) {
        if (state[field] !== undefined) {
          throw new HarnessError(`Map state ${JSON.stringify(name)}: ${field} is not supported by the local interpreter`);
        }
      }
      const { ProcessorConfig, ...processor } = state.ItemProcessor;
      state.ItemProcessor = {
        ProcessorConfig,
        StartAt: WRAPPER_STATE,
        States: {
          [WRAPPER_STATE]: {
            Type: 'Parallel',
            Branches: [processor],
            OutputPath: '$[0]',
            Catch: [{ ErrorEquals: ['States.ALL'], Next: THRESHOLD_STATE }],
            End: true,
          },
          [THRESHOLD_STATE]: { Type: 'Fail', Error: THRESHOLD_ERROR, Cause: THRESHOLD_CAUSE },
        },
      };
    }
  });
  return copy;
}

const agent = new http.Agent({ keepAlive: true });

// post sends body to url and returns the parsed JSON answer. node:http is used
// rather than fetch, whose 300 s header timeout is shorter than a Lambda's.
function post(url, body) {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = http.request(url, {
      method: 'POST',
      agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': data.length },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) {
          reject(new HarnessError(`POST ${url}: HTTP ${res.statusCode}: ${text.slice(0, 500)}`));
          return;
        }
        try {
          resolve(JSON.parse(text));
        } catch (e) {
          reject(new HarnessError(`POST ${url}: invalid JSON answer: ${e.message}`));
        }
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

// The handlers still running: the execution ends (a failed Map aborts its
// other iterations) while their invocations go on, as Lambda's do in AWS.
// The runner waits for them before it exits, so the Go side sees all.
const pending = new Set();
// The first harness failure seen by a handler; it fails the whole run.
let harnessFailure = null;
// Every execution still running (root, Map iterations, Parallel branches).
const executions = new Set();
// The abort signal of the execution (root, Map iteration or Parallel branch)
// that a handler runs in.
const executionSignal = new AsyncLocalStorage();

function handler(invokeURL, stateName, resource) {
  const sdk = resource.startsWith(AWS_SDK);
  return (input) => {
    if (executionSignal.getStore()?.aborted) {
      debug('not invoking', stateName, 'in an aborted execution');
      const err = new Error('the execution was stopped');
      err.name = 'States.Runtime';
      return Promise.reject(err);
    }
    const p = (async () => {
      const payload = sdk ? input ?? null : input?.Payload ?? null;
      debug('invoke', stateName, JSON.stringify(payload));
      let answer;
      try {
        answer = await post(invokeURL, { state: stateName, payload, function: sdk ? resource : input?.FunctionName ?? null });
      } catch (e) {
        harnessFailure ??= e;
        throw e;
      }
      if (answer.error) {
        const err = new Error(String(answer.error.message ?? ''));
        err.name = String(answer.error.type ?? 'Lambda.Unknown');
        debug('error', stateName, err.name, err.message);
        throw err;
      }
      if (sdk) return answer.payload ?? null;
      return { Payload: answer.payload ?? null, StatusCode: 200, ExecutedVersion: '$LATEST' };
    })();
    pending.add(p);
    p.then(() => pending.delete(p), () => pending.delete(p));
    return p;
  };
}

async function main() {
  const configPath = process.argv[2];
  if (!configPath) throw new HarnessError('usage: node run.mjs config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8'));
  const { definition, input = {}, invokeURL, retryIntervalMillis = null, stateRetryIntervalMillis = {} } = config;
  const executionName = config.executionId?.split(':').pop() || `local-${Date.now()}-${Math.random().toString(16).slice(2, 10)}`;
  const executionId = config.executionId || `arn:aws:states:us-east-1:123456789012:execution:local:${executionName}`;
  if (!definition || typeof definition !== 'object') throw new HarnessError('config: no definition object');
  if (typeof invokeURL !== 'string') throw new HarnessError('config: no invokeURL');

  const { StateMachine, ExecutionError, ExecutionTimeoutError } = await import('aws-local-stepfunctions');

  // StateMachine.execute (a private method) runs every execution, nested ones
  // included, with options.abortSignal.
  const execute = StateMachine.prototype.execute;
  if (typeof execute !== 'function') throw new HarnessError('aws-local-stepfunctions: StateMachine.prototype.execute not found (version changed?)');
  StateMachine.prototype.execute = function (input, options, ...rest) {
    const p = executionSignal.run(options.abortSignal, () => execute.call(this, input, options, ...rest));
    executions.add(p);
    p.then(() => executions.delete(p), () => executions.delete(p));
    return p;
  };

  // Validate the definition as written, then run the adjusted copy.
  new StateMachine(definition, { validationOptions: { checkArn: false, checkPaths: false } });
  const adjusted = adjust(definition);

  const taskResourceLocalHandlers = {};
  const retryIntervalOverrides = {};
  forEachState(adjusted, (name, state) => {
    if (state.Type === 'Task') {
      if (state.Resource !== LAMBDA_INVOKE && !String(state.Resource).startsWith(AWS_SDK)) {
        throw new HarnessError(`Task state ${JSON.stringify(name)}: Resource ${JSON.stringify(state.Resource)} is not emulated (only ${LAMBDA_INVOKE} and ${AWS_SDK}*)`);
      }
      taskResourceLocalHandlers[name] = handler(invokeURL, name, state.Resource);
    }
    if (state.Retry && typeof stateRetryIntervalMillis[name] === 'number') {
      retryIntervalOverrides[name] = stateRetryIntervalMillis[name];
    } else if (state.Retry && typeof retryIntervalMillis === 'number') {
      retryIntervalOverrides[name] = retryIntervalMillis;
    }
  });

  const sm = new StateMachine(adjusted, { validationOptions: { noValidate: true } });
  const execution = sm.run(input, {
    overrides: { taskResourceLocalHandlers, retryIntervalOverrides },
    context: { Execution: { Id: executionId, Name: executionName } },
  });
  const logged = (async () => {
    for await (const ev of execution.eventLogs) {
      const where = [ev.state?.name ?? ev.parentState?.name, ev.index].filter((x) => x !== undefined).join(' #');
      debug(ev.type, where, ev.Error ? `${ev.Error}: ${ev.Cause}` : '', ev.retry ? `attempt ${ev.retry.attempt}` : '');
    }
  })();

  let line;
  try {
    const output = await execution.result;
    line = { output: output ?? null };
  } catch (e) {
    if (e instanceof ExecutionError && e.cause instanceof Error) {
      line = { error: { name: e.cause.name, cause: e.cause.message } };
    } else if (e instanceof ExecutionTimeoutError) {
      line = { error: { name: 'States.Timeout', cause: e.message } };
    } else {
      throw e;
    }
  }
  // Executions stopped by a failed Map may still be running a Task: wait for
  // every execution and invocation to end.
  while (executions.size > 0 || pending.size > 0) await Promise.allSettled([...executions, ...pending]);
  await Promise.race([logged, new Promise((r) => setTimeout(r, 100))]);
  if (harnessFailure) throw harnessFailure;
  return line;
}

main().then(
  (line) => {
    agent.destroy();
    process.stdout.write(JSON.stringify(line) + '\n', () => process.exit(0));
  },
  (e) => {
    console.error(`sfn run.mjs: ${e instanceof HarnessError ? e.message : e?.stack ?? e}`);
    process.exit(2);
  },
);
