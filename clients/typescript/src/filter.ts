/**
 * Mastra vector filters → ctxstore's filter language. Pure: every operator Mastra's filters
 * have maps to one the extension compiles (values and field names stay bound parameters there);
 * anything else is refused here with a clear error, before any SQL runs.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The metadata key that holds a vector's Mastra id (stripped from returned metadata). */
export const ID_KEY = "_mastra_id";

const FIELD_OPERATORS = new Set([
  "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$all", "$elemMatch",
  "$exists", "$regex", "$options", "$size", "$contains", "$not",
]);
const LOGICAL = new Set(["$and", "$or", "$nor", "$not"]);

export class FilterError extends Error {
  constructor(message: string) {
    super(`invalid vector filter: ${message}`);
    this.name = "FilterError";
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date)
    && !(value instanceof RegExp);
}

function scalar(value: unknown, where: string): Json {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new FilterError(`${where}: ${value} is not a finite number`);
    return Object.is(value, -0) ? 0 : value;
  }
  if (value === undefined) return null;
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (Array.isArray(value)) return value.map((v) => scalar(v, where));
  if (isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scalar(v, where)]));
  }
  throw new FilterError(`${where}: unsupported value ${String(value)}`);
}

function list(value: unknown, where: string): Json[] {
  return (Array.isArray(value) ? value : [value]).map((v) => scalar(v, where));
}

/** A LIKE pattern matching `text` anywhere, its metacharacters escaped. */
function substring(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function regex(value: unknown, options: unknown, where: string): Record<string, Json> {
  let pattern: string;
  let flags = typeof options === "string" ? options : "";
  if (options !== undefined && typeof options !== "string") {
    throw new FilterError(`${where}: $options is a string of flags`);
  }
  if (value instanceof RegExp) {
    pattern = value.source;
    flags += value.flags;
  } else if (typeof value === "string") {
    pattern = value;
  } else {
    throw new FilterError(`${where}: $regex takes a string or a RegExp`);
  }
  const unique = [...new Set(flags)];
  const unsupported = unique.filter((f) => f !== "i");
  if (unsupported.length > 0) {
    throw new FilterError(`${where}: regex flags ${unsupported.join("")} are not supported (only i)`);
  }
  return unique.includes("i") ? { $regex: pattern, $options: "i" } : { $regex: pattern };
}

/** The operators of one field. */
function conditions(ops: Record<string, unknown>, where: string): Record<string, Json> {
  const out: Record<string, Json> = {};
  if ("$options" in ops && !("$regex" in ops)) {
    throw new FilterError(`${where}: $options is not valid without $regex`);
  }
  for (const [op, operand] of Object.entries(ops)) {
    if (!FIELD_OPERATORS.has(op)) {
      throw new FilterError(`${where}: unsupported operator ${op}`);
    }
    switch (op) {
      case "$options":
        break;
      case "$regex":
        Object.assign(out, regex(operand, ops.$options, where));
        break;
      case "$in":
      case "$nin":
      case "$all":
        out[op] = list(operand, `${where}.${op}`);
        break;
      case "$exists":
        if (typeof operand !== "boolean") throw new FilterError(`${where}: $exists takes true or false`);
        out.$exists = operand;
        break;
      case "$size":
        if (!Number.isInteger(operand) || (operand as number) < 0) {
          throw new FilterError(`${where}: $size takes a whole number`);
        }
        out.$size = operand as number;
        break;
      case "$contains":
        // Mastra's Postgres meaning: a string is a case-insensitive substring, a list must all be held
        if (typeof operand === "string") out.$ilike = substring(operand);
        else if (Array.isArray(operand)) out.$all = list(operand, `${where}.$contains`);
        else out.$eq = scalar(operand, `${where}.$contains`);
        break;
      case "$elemMatch": {
        if (!isPlainObject(operand) || Object.keys(operand).length === 0) {
          throw new FilterError(`${where}: $elemMatch requires an object with conditions`);
        }
        const onElement = Object.keys(operand).every((k) => k.startsWith("$") && !LOGICAL.has(k));
        out.$elemMatch = onElement ? conditions(operand, `${where}.$elemMatch`) : translate(operand, `${where}.$elemMatch`);
        break;
      }
      case "$not": {
        if (operand instanceof RegExp) {
          out.$not = regex(operand, undefined, `${where}.$not`);
        } else if (isPlainObject(operand) && Object.keys(operand).length > 0) {
          out.$not = conditions(operand, `${where}.$not`);
        } else {
          throw new FilterError(`${where}: $not requires an object of operators`);
        }
        break;
      }
      default:
        out[op] = scalar(operand, `${where}.${op}`);
    }
  }
  return out;
}

/**
 * Translates a Mastra filter. Field names become metadata paths (`"$."` prefix, so names like
 * `id` or `content` never mean ctxstore's own columns); nested plain objects become dotted
 * paths, a bare array means `$in`, a bare value `$eq`.
 */
export function translate(filter: unknown, where = "filter", prefix = "$."): Record<string, Json> {
  if (filter === null || filter === undefined) return {};
  if (!isPlainObject(filter)) throw new FilterError(`${where}: a filter is an object`);
  const out: Record<string, Json> = {};
  const and: Json[] = [];
  const put = (key: string, value: Json) => {
    if (key in out) and.push({ [key]: value });
    else out[key] = value;
  };
  for (const [key, value] of Object.entries(filter)) {
    const here = `${where}.${key}`;
    if (key === "$and" || key === "$or" || key === "$nor") {
      if (!Array.isArray(value)) throw new FilterError(`${here}: takes a list of filters`);
      if (value.length === 0) {
        // Mastra's Postgres meaning of empty lists: $and and $nor hold, $or does not
        if (key === "$or") and.push({ [`${prefix}${ID_KEY}`]: { $in: [] } });
        continue;
      }
      put(key, value.map((item, i) => translate(item, `${here}[${i}]`, prefix)));
    } else if (key === "$not") {
      if (!isPlainObject(value) || Object.keys(value).length === 0) {
        throw new FilterError(`${here}: $not requires a non-empty filter object`);
      }
      put("$not", translate(value, here, prefix));
    } else if (key.startsWith("$")) {
      throw new FilterError(`${here}: ${key} is not valid at the top level of a filter`);
    } else {
      for (const [path, condition] of fields(key, value)) {
        put(`${prefix}${path}`, condition);
      }
    }
  }
  return and.length > 0 ? { ...out, $and: [...((out.$and as Json[]) ?? []), ...and] } : out;
}

/** A field's condition; a nested object without operators is a set of deeper paths. */
function fields(key: string, value: unknown): Array<[string, Json]> {
  if (key === ID_KEY) throw new FilterError(`${key} is reserved for the vector's id`);
  if (Array.isArray(value)) return [[key, { $in: list(value, key) }]];
  if (value instanceof RegExp) return [[key, regex(value, undefined, key)]];
  if (isPlainObject(value)) {
    const keys = Object.keys(value);
    if (keys.length > 0 && keys.every((k) => k.startsWith("$"))) return [[key, conditions(value, key)]];
    if (keys.some((k) => k.startsWith("$"))) {
      throw new FilterError(`${key}: cannot mix operators and plain keys`);
    }
    if (keys.length === 0) return [[key, { $eq: {} }]];
    return keys.flatMap((k) => fields(`${key}.${k}`, value[k]));
  }
  return [[key, scalar(value, key)]];
}
