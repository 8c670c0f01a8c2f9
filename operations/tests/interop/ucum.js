// Validates UCUM unit codes with @lhncbc/ucum-lhc (the NLM's UCUM library): one code per argument;
// prints one JSON line per code ({"unit", "status", "msg"}) and exits 1 when any is not valid.
// NODE_PATH names the node_modules holding the package (scripts/test installs it).
const ucum = require('@lhncbc/ucum-lhc');
const utils = ucum.UcumLhcUtils.getInstance();
let bad = 0;
for (const unit of process.argv.slice(2)) {
  const result = utils.validateUnitString(unit, true);
  if (result.status !== 'valid') bad += 1;
  console.log(JSON.stringify({ unit, status: result.status, msg: result.msg }));
}
process.exit(bad ? 1 : 0);
