//! The filter language shared by every ctxstore store: a JSON document compiled to a SQL boolean
//! expression with bound parameters. Values and path keys only ever travel as parameters; the
//! SQL text is built from fixed fragments and whitelisted column names, so no input can inject.
//!
//! ```text
//! {"topic": "billing"}                              shorthand for $eq
//! {"user.age": {"$gte": 18, "$lt": 65}}             dotted paths walk nested objects
//! {"tags": {"$contains": "urgent"}}                 array contains (a value or all of an array)
//! {"$or": [{"a": 1}, {"$not": {"b": {"$exists": true}}}]}
//! {"importance": {"$gt": 0.5}}                      built-in columns by name
//! {"$.importance": 3}                               "$." addresses the document, never a column
//! ```
//! Operators: $eq $ne $gt $gte $lt $lte $in $nin $like $ilike $exists $contains, and $and $or
//! $not. `$ne` and `$nin` also match rows where the field is missing.

use serde_json::{Map, Value};

use crate::core::conversation::json_type;
use crate::error::{CtxError, CtxResult};

/// SQL type of a built-in column, which decides how values are bound and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    /// bigint, integer or double precision: compared as float8
    Number,
    /// real (float4): compared at real precision, or a stored 0.9 (0.899999976 as float8)
    /// would never equal the 0.9 of a filter
    Real,
    Timestamp,
    Uuid,
    TextArray,
}

/// What a filter may address: built-in columns, and a jsonb column for every other path.
pub struct FilterTarget {
    /// SQL expression of the jsonb document (e.g. `m.metadata`).
    pub document: &'static str,
    /// (filter name, SQL expression, type) of the built-in columns.
    pub columns: &'static [(&'static str, &'static str, ColumnType)],
}

/// A bound parameter of a compiled filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    TextArray(Vec<String>),
    Number(f64),
    Jsonb(Value),
    JsonbArray(Vec<Value>),
}

/// A compiled filter: a SQL boolean expression whose placeholders start at the offset given to
/// [`compile`], and their values in order.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    pub sql: String,
    pub params: Vec<Param>,
}

const MAX_DEPTH: usize = 32;
const MAX_PATH_SEGMENTS: usize = 32;

/// Compiles `filter` for `target`; the first placeholder is `$first_param`.
pub fn compile(filter: &Value, target: &FilterTarget, first_param: usize) -> CtxResult<SqlFilter> {
    let mut compiler = Compiler {
        target,
        first_param,
        params: Vec::new(),
        document: target.document.to_string(),
        element_depth: 0,
    };
    let sql = match filter {
        Value::Null => "true".to_string(),
        Value::Object(map) => compiler.conjunction(map, "", 0)?,
        other => {
            return Err(malformed(
                "",
                format!("a filter must be a JSON object, not {}", json_type(other)),
            ))
        }
    };
    Ok(SqlFilter {
        sql,
        params: compiler.params,
    })
}

fn malformed(path: &str, message: impl Into<String>) -> CtxError {
    let message = message.into();
    let located = if path.is_empty() {
        format!("invalid filter: {message}")
    } else {
        format!("invalid filter at \"{path}\": {message}")
    };
    CtxError::invalid(located).with_hint(
        "filters look like {\"field\": value} or {\"field\": {\"$op\": value}}; operators: \
         $eq $ne $gt $gte $lt $lte $between $in $nin $all $size $elemMatch $like $ilike $regex \
         $exists $contains $not; and, around filters, $and $or $not $nor",
    )
}

struct Compiler<'a> {
    target: &'a FilterTarget,
    first_param: usize,
    params: Vec<Param>,
    /// the jsonb the document paths are in: the target's document, or inside `$elemMatch` the
    /// array element being tested
    document: String,
    /// how many `$elemMatch` levels deep (built-in columns exist only at the top)
    element_depth: usize,
}

/// A `$regex` pattern longer than this is refused: patterns come from callers.
const MAX_REGEX_BYTES: usize = 1024;

/// A field name with this prefix is a path in the document even when a built-in column has the
/// same name (`{"$.id": 5}` is the document's `id`, not the row's).
const DOCUMENT_PREFIX: &str = "$.";

/// Where a field lives: a built-in column, or a path inside the jsonb document.
enum Field {
    Column(&'static str, ColumnType),
    Document(Vec<String>),
}

impl Compiler<'_> {
    fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.first_param + self.params.len() - 1)
    }

    /// Every key of an object, ANDed.
    fn conjunction(
        &mut self,
        map: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) -> CtxResult<String> {
        check_depth(at, depth)?;
        let mut parts = Vec::with_capacity(map.len());
        for (key, value) in map {
            parts.push(match key.as_str() {
                "$and" | "$or" => self.logical(key, value, &join(at, key), depth)?,
                // none of the listed filters holds
                "$nor" => format!(
                    "NOT coalesce(({}), false)",
                    self.logical("$or", value, &join(at, "$nor"), depth)?
                ),
                "$not" => match value {
                    Value::Object(inner) => format!(
                        "NOT coalesce(({}), false)",
                        self.conjunction(inner, &join(at, "$not"), depth + 1)?
                    ),
                    // a list of filters: none of them holding together (NOT of their $and)
                    Value::Array(_) => format!(
                        "NOT coalesce(({}), false)",
                        self.logical("$and", value, &join(at, "$not"), depth + 1)?
                    ),
                    other => {
                        return Err(malformed(
                            &join(at, "$not"),
                            format!(
                                "$not takes a filter object or a list of them, not {}",
                                json_type(other)
                            ),
                        ))
                    }
                },
                path if path.starts_with(DOCUMENT_PREFIX) => self.field(path, value, depth)?,
                op if op.starts_with('$') => {
                    return Err(malformed(
                        &join(at, op),
                        format!("unknown logical operator \"{op}\""),
                    ))
                }
                field => self.field(field, value, depth)?,
            });
        }
        Ok(match parts.len() {
            0 => "true".to_string(),
            1 => parts.pop().unwrap_or_default(),
            _ => parts
                .into_iter()
                .map(|p| format!("({p})"))
                .collect::<Vec<_>>()
                .join(" AND "),
        })
    }

    /// The filters of a list (at path `here`), joined by `op`'s connective.
    fn logical(&mut self, op: &str, value: &Value, here: &str, depth: usize) -> CtxResult<String> {
        let here = here.to_string();
        let name = here.rsplit('.').next().unwrap_or(op);
        let items = value.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
            malformed(&here, format!("{name} takes a non-empty array of filters"))
        })?;
        let mut parts = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_at = format!("{here}[{i}]");
            match item {
                Value::Object(inner) => parts.push(format!(
                    "({})",
                    self.conjunction(inner, &item_at, depth + 1)?
                )),
                other => {
                    return Err(malformed(
                        &item_at,
                        format!("expected a filter object, not {}", json_type(other)),
                    ))
                }
            }
        }
        Ok(parts.join(if op == "$and" { " AND " } else { " OR " }))
    }

    fn resolve(&self, name: &str) -> CtxResult<Field> {
        let name = match name.strip_prefix(DOCUMENT_PREFIX) {
            Some(path) => path,
            None => {
                let column = self.target.columns.iter().find(|(n, _, _)| *n == name);
                if let (Some(&(_, sql, kind)), 0) = (column, self.element_depth) {
                    return Ok(Field::Column(sql, kind));
                }
                name
            }
        };
        let segments: Vec<String> = name.split('.').map(str::to_string).collect();
        if segments.iter().any(String::is_empty) {
            return Err(malformed(
                name,
                "empty path segment (paths look like \"a.b.c\")",
            ));
        }
        if segments.len() > MAX_PATH_SEGMENTS {
            return Err(malformed(
                name,
                format!("paths have at most {MAX_PATH_SEGMENTS} segments"),
            ));
        }
        Ok(Field::Document(segments))
    }

    /// `{"field": value}` or `{"field": {"$op": value, ...}}`.
    fn field(&mut self, name: &str, condition: &Value, depth: usize) -> CtxResult<String> {
        let field = self.resolve(name)?;
        match condition {
            Value::Object(ops) if ops.keys().next().is_some_and(|k| is_operator(k)) => {
                self.conditions(&field, name, ops, depth)
            }
            literal => self.operator(&field, name, "$eq", literal),
        }
    }

    /// The operators of one field, ANDed.
    fn conditions(
        &mut self,
        field: &Field,
        name: &str,
        operators: &Map<String, Value>,
        depth: usize,
    ) -> CtxResult<String> {
        check_depth(name, depth)?;
        let options = operators.get("$options");
        if options.is_some() && !operators.contains_key("$regex") {
            return Err(malformed(name, "$options is valid only beside $regex"));
        }
        let mut parts = Vec::with_capacity(operators.len());
        for (op, operand) in operators {
            if !op.starts_with('$') {
                return Err(malformed(
                    name,
                    format!("cannot mix operators and plain keys (\"{op}\")"),
                ));
            }
            parts.push(match op.as_str() {
                "$options" => continue,
                // {"field": {"$not": {"$gt": 5}}}: the field's conditions do not hold
                "$not" => match operand {
                    Value::Object(inner)
                        if !inner.is_empty() && inner.keys().all(|k| k.starts_with('$')) =>
                    {
                        format!(
                            "NOT coalesce(({}), false)",
                            self.conditions(field, name, inner, depth + 1)?
                        )
                    }
                    other => {
                        return Err(malformed(
                            name,
                            format!("$not on a field takes an object of operators, not {other}"),
                        ))
                    }
                },
                "$regex" => self.regex(field, name, operand, options)?,
                "$elemMatch" => self.element_match(field, name, operand, depth)?,
                _ => self.operator(field, name, op, operand)?,
            });
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or_default()
        } else {
            parts.join(" AND ")
        })
    }

    /// `{"tags": {"$elemMatch": {...}}}`: some element of the array matches the inner filter,
    /// whose paths are inside the element, or whose operators apply to the element itself
    /// (`{"$elemMatch": {"$gte": 80, "$lt": 85}}`).
    fn element_match(
        &mut self,
        field: &Field,
        name: &str,
        operand: &Value,
        depth: usize,
    ) -> CtxResult<String> {
        let Field::Document(path) = field else {
            return Err(malformed(
                name,
                format!("$elemMatch applies to arrays in the document, not to \"{name}\""),
            ));
        };
        let condition = match operand {
            Value::Object(map) if !map.is_empty() => map,
            other => {
                return Err(malformed(
                    name,
                    format!("$elemMatch takes a non-empty filter object, not {other}"),
                ))
            }
        };
        check_depth(name, depth + 1)?;
        let path_param = self.bind(Param::TextArray(path.clone()));
        let array = format!("({} #> {path_param}::text[])", self.document);
        self.element_depth += 1;
        let alias = format!("elem{}", self.element_depth);
        let outer = std::mem::replace(&mut self.document, format!("{alias}.value"));
        let on_the_element = condition
            .keys()
            .all(|k| is_operator(k) && !matches!(k.as_str(), "$and" | "$or" | "$not" | "$nor"));
        let inner = if on_the_element {
            self.conditions(&Field::Document(Vec::new()), name, condition, depth + 1)
        } else {
            self.conjunction(condition, &join(name, "$elemMatch"), depth + 1)
        };
        self.document = outer;
        self.element_depth -= 1;
        // (CASE: jsonb_array_elements must never see a non-array; AND does not order evaluation)
        Ok(format!(
            "CASE WHEN jsonb_typeof({array}) = 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements({array}) AS {alias}(value) WHERE {}) ELSE false END",
            inner?
        ))
    }

    /// `{"name": {"$regex": "^a.*z$", "$options": "i"}}`: a POSIX regular expression (PostgreSQL's
    /// `~`, `~*` with option i) on a string; bounded in length and without back-references,
    /// whose matching time can grow exponentially.
    fn regex(
        &mut self,
        field: &Field,
        name: &str,
        pattern: &Value,
        options: Option<&Value>,
    ) -> CtxResult<String> {
        let Value::String(pattern) = pattern else {
            return Err(malformed(
                name,
                format!("$regex takes a string pattern, not {}", json_type(pattern)),
            ));
        };
        if pattern.len() > MAX_REGEX_BYTES {
            return Err(malformed(
                name,
                format!("$regex patterns have at most {MAX_REGEX_BYTES} bytes"),
            ));
        }
        if has_back_reference(pattern) {
            return Err(malformed(
                name,
                "$regex patterns cannot hold back-references (\\1 to \\9)",
            ));
        }
        let case_insensitive = match options {
            None => false,
            Some(Value::String(o)) if o.chars().all(|c| c == 'i') => !o.is_empty(),
            Some(other) => {
                return Err(malformed(
                    name,
                    format!("$options takes \"i\" (case-insensitive), not {other}"),
                ))
            }
        };
        let op = if case_insensitive { "~*" } else { "~" };
        match field {
            Field::Document(path) => {
                let doc = self.document.clone();
                let path_param = self.bind(Param::TextArray(path.clone()));
                let bound = self.bind(Param::Text(pattern.clone()));
                Ok(format!("coalesce(jsonb_typeof(({doc} #> {path_param}::text[])) = 'string' AND ({doc} #>> {path_param}::text[]) {op} {bound}, false)"))
            }
            Field::Column(sql, ColumnType::Text) => {
                let bound = self.bind(Param::Text(pattern.clone()));
                Ok(format!("coalesce({sql} {op} {bound}, false)"))
            }
            Field::Column(..) => Err(malformed(
                name,
                format!("$regex does not apply to \"{name}\""),
            )),
        }
    }

    fn operator(
        &mut self,
        field: &Field,
        name: &str,
        op: &str,
        operand: &Value,
    ) -> CtxResult<String> {
        if op == "$between" {
            // inclusive at both ends, each bound checked as $gte / $lte check theirs
            let [low, high] = operand.as_array().map(Vec::as_slice).unwrap_or_default() else {
                return Err(malformed(
                    name,
                    format!("$between takes [low, high], not {operand}"),
                ));
            };
            let low = self.operator(field, name, "$gte", low)?;
            let high = self.operator(field, name, "$lte", high)?;
            return Ok(format!("({low}) AND ({high})"));
        }
        match field {
            Field::Document(path) => self.document_operator(path, name, op, operand),
            Field::Column(sql, kind) => self.column_operator(sql, *kind, name, op, operand),
        }
    }

    fn document_operator(
        &mut self,
        path: &[String],
        name: &str,
        op: &str,
        operand: &Value,
    ) -> CtxResult<String> {
        let doc = self.document.clone();
        if op == "$all" && all_values(operand).is_some_and(|v| v.is_empty()) {
            // nothing is all of an empty list (and no parameter may go unused: Postgres could
            // not type it)
            return Ok("false".to_string());
        }
        if op == "$eq" && !operand.is_array() && !operand.is_object() {
            // For a scalar, containment of {"a": {"b": v}} is exactly "a.b equals v", and a GIN
            // (jsonb_path_ops) index can answer it.
            let nested = path.iter().rev().fold(operand.clone(), |inner, key| {
                Value::Object(Map::from_iter([(key.clone(), inner)]))
            });
            return Ok(format!(
                "{doc} @> {}::jsonb",
                self.bind(Param::Jsonb(nested))
            ));
        }
        let path_param = self.bind(Param::TextArray(path.to_vec()));
        let value = format!("({doc} #> {path_param}::text[])");
        Ok(match op {
            "$eq" => format!(
                "coalesce({value} = {}::jsonb, false)",
                self.bind(Param::Jsonb(operand.clone()))
            ),
            "$ne" => format!(
                "NOT coalesce({value} = {}::jsonb, false)",
                self.bind(Param::Jsonb(operand.clone()))
            ),
            "$gt" | "$gte" | "$lt" | "$lte" => {
                let kind = match operand {
                    Value::Number(_) => "number",
                    Value::String(_) => "string",
                    other => {
                        return Err(malformed(
                            name,
                            format!("{op} compares numbers or strings, not {}", json_type(other)),
                        ))
                    }
                };
                let bound = self.bind(Param::Jsonb(operand.clone()));
                format!("coalesce(jsonb_typeof({value}) = '{kind}' AND {value} {} {bound}::jsonb, false)", comparison(op))
            }
            "$in" | "$nin" => {
                let list = operand.as_array().ok_or_else(|| {
                    malformed(
                        name,
                        format!("{op} takes an array, not {}", json_type(operand)),
                    )
                })?;
                let bound = self.bind(Param::JsonbArray(list.clone()));
                let test = format!("coalesce({value} = ANY({bound}::jsonb[]), false)");
                if op == "$in" {
                    test
                } else {
                    format!("NOT {test}")
                }
            }
            "$all" => match all_values(operand) {
                // every value is an element of the array
                Some(values) => {
                    let bound = self.bind(Param::Jsonb(Value::Array(values)));
                    format!("coalesce(jsonb_typeof({value}) = 'array' AND {value} @> {bound}::jsonb, false)")
                }
                None => {
                    return Err(malformed(
                        name,
                        "$all takes a list of values, not an object or null",
                    ))
                }
            },
            "$size" => {
                let size = array_size(name, operand)?;
                let bound = self.bind(Param::Number(size));
                format!("coalesce(jsonb_typeof({value}) = 'array' AND jsonb_array_length({value}) = {bound}::float8, false)")
            }
            "$like" | "$ilike" => {
                let pattern = operand.as_str().ok_or_else(|| {
                    malformed(
                        name,
                        format!("{op} takes a string pattern, not {}", json_type(operand)),
                    )
                })?;
                let bound = self.bind(Param::Text(pattern.to_string()));
                let sql_op = if op == "$like" { "LIKE" } else { "ILIKE" };
                format!("coalesce(jsonb_typeof({value}) = 'string' AND ({doc} #>> {path_param}::text[]) {sql_op} {bound}, false)")
            }
            "$exists" => match operand {
                Value::Bool(true) => format!("{value} IS NOT NULL"),
                Value::Bool(false) => format!("{value} IS NULL"),
                other => {
                    return Err(malformed(
                        name,
                        format!("$exists takes true or false, not {}", json_type(other)),
                    ))
                }
            },
            "$contains" => {
                let needle = match operand {
                    Value::Array(_) => operand.clone(),
                    Value::Object(_) | Value::Null => {
                        return Err(malformed(
                            name,
                            format!(
                                "$contains takes a value or an array, not {}",
                                json_type(operand)
                            ),
                        ))
                    }
                    scalar => Value::Array(vec![scalar.clone()]),
                };
                let bound = self.bind(Param::Jsonb(needle));
                format!("coalesce(jsonb_typeof({value}) = 'array' AND {value} @> {bound}::jsonb, false)")
            }
            other => return Err(malformed(name, format!("unknown operator \"{other}\""))),
        })
    }

    fn column_operator(
        &mut self,
        sql: &str,
        kind: ColumnType,
        name: &str,
        op: &str,
        operand: &Value,
    ) -> CtxResult<String> {
        let cast = match kind {
            ColumnType::Text => "text",
            ColumnType::Number => "float8",
            ColumnType::Real => "real",
            ColumnType::Timestamp => "timestamptz",
            ColumnType::Uuid => "uuid",
            ColumnType::TextArray => "text[]",
        };
        Ok(match op {
            "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" => {
                if operand.is_null() {
                    return Ok(match op {
                        "$eq" => format!("{sql} IS NULL"),
                        "$ne" => format!("{sql} IS NOT NULL"),
                        _ => return Err(malformed(name, format!("{op} cannot compare with null"))),
                    });
                }
                if kind == ColumnType::TextArray {
                    if matches!(op, "$eq" | "$ne") {
                        let bound = self.bind(Param::TextArray(text_array(name, operand)?));
                        let test = format!("coalesce({sql} = {bound}::text[], false)");
                        return Ok(if op == "$eq" {
                            test
                        } else {
                            format!("NOT {test}")
                        });
                    }
                    return Err(malformed(
                        name,
                        format!("{op} does not apply to \"{name}\""),
                    ));
                }
                if matches!(kind, ColumnType::Uuid) && !matches!(op, "$eq" | "$ne") {
                    return Err(malformed(
                        name,
                        format!("{op} does not apply to \"{name}\""),
                    ));
                }
                let bound = self.scalar(kind, name, op, operand)?;
                let test = format!("coalesce({sql} {} {bound}::{cast}, false)", comparison(op));
                if op == "$ne" {
                    format!("NOT coalesce({sql} = {bound}::{cast}, false)")
                } else {
                    test
                }
            }
            "$in" | "$nin" => {
                let list = operand.as_array().ok_or_else(|| {
                    malformed(
                        name,
                        format!("{op} takes an array, not {}", json_type(operand)),
                    )
                })?;
                if kind == ColumnType::TextArray {
                    return Err(malformed(
                        name,
                        format!("{op} does not apply to \"{name}\""),
                    ));
                }
                let texts = list
                    .iter()
                    .map(|v| match (kind, v) {
                        (ColumnType::Number | ColumnType::Real, Value::Number(n)) => {
                            Ok(n.to_string())
                        }
                        (ColumnType::Number | ColumnType::Real, other) => Err(malformed(
                            name,
                            format!("{op} on a number needs numbers, not {}", json_type(other)),
                        )),
                        (_, Value::String(s)) => Ok(s.clone()),
                        (_, other) => Err(malformed(
                            name,
                            format!("{op} needs strings here, not {}", json_type(other)),
                        )),
                    })
                    .collect::<CtxResult<Vec<_>>>()?;
                let bound = self.bind(Param::TextArray(texts));
                let test = format!("coalesce({sql} = ANY({bound}::text[]::{cast}[]), false)");
                if op == "$in" {
                    test
                } else {
                    format!("NOT {test}")
                }
            }
            "$like" | "$ilike" if kind == ColumnType::Text => {
                let pattern = operand.as_str().ok_or_else(|| {
                    malformed(
                        name,
                        format!("{op} takes a string pattern, not {}", json_type(operand)),
                    )
                })?;
                let bound = self.bind(Param::Text(pattern.to_string()));
                format!(
                    "coalesce({sql} {} {bound}, false)",
                    if op == "$like" { "LIKE" } else { "ILIKE" }
                )
            }
            "$exists" => match operand {
                Value::Bool(true) => format!("{sql} IS NOT NULL"),
                Value::Bool(false) => format!("{sql} IS NULL"),
                other => {
                    return Err(malformed(
                        name,
                        format!("$exists takes true or false, not {}", json_type(other)),
                    ))
                }
            },
            "$all" if kind == ColumnType::TextArray => match all_values(operand) {
                Some(values) if values.is_empty() => "false".to_string(),
                Some(values) => {
                    let bound =
                        self.bind(Param::TextArray(text_array(name, &Value::Array(values))?));
                    format!("coalesce({sql} @> {bound}::text[], false)")
                }
                None => {
                    return Err(malformed(
                        name,
                        "$all takes a list of values, not an object or null",
                    ))
                }
            },
            "$size" if kind == ColumnType::TextArray => {
                let size = array_size(name, operand)?;
                let bound = self.bind(Param::Number(size));
                format!("coalesce(cardinality({sql}) = {bound}::float8, false)")
            }
            "$contains" if kind == ColumnType::TextArray => {
                let needle = match operand {
                    Value::String(s) => vec![s.clone()],
                    other => text_array(name, other)?,
                };
                let bound = self.bind(Param::TextArray(needle));
                format!("coalesce({sql} @> {bound}::text[], false)")
            }
            "$like" | "$ilike" | "$contains" | "$all" | "$size" => {
                return Err(malformed(
                    name,
                    format!("{op} does not apply to \"{name}\""),
                ))
            }
            other => return Err(malformed(name, format!("unknown operator \"{other}\""))),
        })
    }

    /// Binds a scalar for a built-in column, checking its JSON type.
    fn scalar(
        &mut self,
        kind: ColumnType,
        name: &str,
        op: &str,
        operand: &Value,
    ) -> CtxResult<String> {
        let param = match (kind, operand) {
            (ColumnType::Number | ColumnType::Real, Value::Number(n)) => {
                Param::Number(n.as_f64().unwrap_or(f64::NAN))
            }
            (ColumnType::Number | ColumnType::Real, other) => {
                return Err(malformed(
                    name,
                    format!(
                        "{op} on \"{name}\" needs a number, not {}",
                        json_type(other)
                    ),
                ))
            }
            (_, Value::String(s)) => Param::Text(s.clone()),
            (_, other) => {
                return Err(malformed(
                    name,
                    format!(
                        "{op} on \"{name}\" needs a string, not {}",
                        json_type(other)
                    ),
                ))
            }
        };
        Ok(self.bind(param))
    }
}

/// An operator key (`$gt`), not a document path (`$.gt`).
fn is_operator(key: &str) -> bool {
    key.starts_with('$') && !key.starts_with(DOCUMENT_PREFIX)
}

/// `$all`'s values: a list, or one value taken as a list of it (as Mastra's filters do).
fn all_values(operand: &Value) -> Option<Vec<Value>> {
    match operand {
        Value::Array(values) => Some(values.clone()),
        Value::Object(_) | Value::Null => None,
        scalar => Some(vec![scalar.clone()]),
    }
}

/// `$size`'s operand: a whole number of elements.
fn array_size(name: &str, operand: &Value) -> CtxResult<f64> {
    operand
        .as_u64()
        .filter(|n| *n <= i32::MAX as u64)
        .map(|n| n as f64)
        .ok_or_else(|| {
            malformed(
                name,
                format!("$size takes a whole number of elements, not {operand}"),
            )
        })
}

/// Whether a pattern has a back-reference (`\1`..`\9` not itself escaped).
fn has_back_reference(pattern: &str) -> bool {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                if ('1'..='9').contains(&next) {
                    return true;
                }
            }
        }
    }
    false
}

fn text_array(name: &str, operand: &Value) -> CtxResult<Vec<String>> {
    operand
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| {
            malformed(
                name,
                format!(
                    "\"{name}\" compares with an array of strings, not {}",
                    json_type(operand)
                ),
            )
        })
}

fn check_depth(at: &str, depth: usize) -> CtxResult<()> {
    if depth > MAX_DEPTH {
        return Err(malformed(
            at,
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(())
}

fn comparison(op: &str) -> &'static str {
    match op {
        "$eq" => "=",
        "$ne" => "<>",
        "$gt" => ">",
        "$gte" => ">=",
        "$lt" => "<",
        _ => "<=",
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TARGET: FilterTarget = FilterTarget {
        document: "m.metadata",
        columns: &[
            ("content", "m.content", ColumnType::Text),
            ("importance", "m.importance", ColumnType::Real),
            ("created_at", "m.created_at", ColumnType::Timestamp),
            ("id", "m.id", ColumnType::Uuid),
            ("namespace", "m.namespace", ColumnType::TextArray),
        ],
    };

    fn sql(filter: Value) -> SqlFilter {
        compile(&filter, &TARGET, 3).unwrap()
    }

    fn err(filter: Value) -> CtxError {
        compile(&filter, &TARGET, 1).unwrap_err()
    }

    #[test]
    fn empty_and_null_filters_match_everything() {
        assert_eq!(sql(json!({})).sql, "true");
        assert_eq!(sql(Value::Null).sql, "true");
    }

    #[test]
    fn shorthand_equality_is_an_indexable_containment() {
        let f = sql(json!({"user.tier": "gold"}));
        assert_eq!(f.sql, "m.metadata @> $3::jsonb");
        assert_eq!(
            f.params,
            vec![Param::Jsonb(json!({"user": {"tier": "gold"}}))]
        );
        // arrays and objects compare as whole values instead
        let f = sql(json!({"tags": {"$eq": ["a"]}}));
        assert_eq!(
            f.sql,
            "coalesce((m.metadata #> $3::text[]) = $4::jsonb, false)"
        );
    }

    #[test]
    fn every_document_operator_compiles() {
        let cases = [
            (json!({"a": {"$eq": 1}}), "m.metadata @> $1::jsonb"),
            (json!({"a": {"$ne": 1}}), "NOT coalesce("),
            (json!({"a": {"$gt": 1}}), "jsonb_typeof((m.metadata #> $1::text[])) = 'number' AND (m.metadata #> $1::text[]) > $2::jsonb"),
            (json!({"a": {"$gte": "2024"}}), "= 'string' AND (m.metadata #> $1::text[]) >= $2::jsonb"),
            (json!({"a": {"$lt": 1}}), "< $2::jsonb"),
            (json!({"a": {"$lte": 1}}), "<= $2::jsonb"),
            (json!({"a": {"$in": [1, "x"]}}), "= ANY($2::jsonb[])"),
            (json!({"a": {"$nin": [1]}}), "NOT coalesce((m.metadata #> $1::text[]) = ANY($2::jsonb[]), false)"),
            (json!({"a": {"$like": "x%"}}), "(m.metadata #>> $1::text[]) LIKE $2"),
            (json!({"a": {"$ilike": "x%"}}), "ILIKE $2"),
            (json!({"a": {"$exists": true}}), "(m.metadata #> $1::text[]) IS NOT NULL"),
            (json!({"a": {"$exists": false}}), "(m.metadata #> $1::text[]) IS NULL"),
            (json!({"a": {"$contains": "x"}}), "= 'array' AND (m.metadata #> $1::text[]) @> $2::jsonb"),
        ];
        for (filter, expected) in cases {
            let f = compile(&filter, &TARGET, 1).unwrap();
            assert!(f.sql.contains(expected), "{filter}: {}", f.sql);
        }
        let f = compile(&json!({"tags": {"$contains": "x"}}), &TARGET, 1).unwrap();
        assert_eq!(
            f.params[1],
            Param::Jsonb(json!(["x"])),
            "a scalar needle is wrapped in an array"
        );
    }

    #[test]
    fn logical_operators_nest() {
        let f = sql(json!({"$or": [{"a": 1}, {"$and": [{"b": 2}, {"$not": {"c": 3}}]}], "d": 4}));
        assert_eq!(f.params.len(), 4);
        assert!(f.sql.contains(" OR "), "{}", f.sql);
        assert!(f.sql.contains(" AND "), "{}", f.sql);
        assert!(f.sql.contains("NOT coalesce(("), "{}", f.sql);
        // placeholders are numbered in order from the offset
        for n in 3..=6 {
            assert!(f.sql.contains(&format!("${n}")), "{}", f.sql);
        }
        assert!(!f.sql.contains("$7"));
    }

    #[test]
    fn between_is_an_inclusive_range_of_two_bounds() {
        let f = sql(json!({"qty": {"$between": [40, 60]}}));
        assert!(
            f.sql.contains(">= $4::jsonb") && f.sql.contains("<= $6::jsonb"),
            "{}",
            f.sql
        );
        assert_eq!(f.params[1], Param::Jsonb(json!(40)));
        assert_eq!(f.params[3], Param::Jsonb(json!(60)));
        let f = sql(json!({"importance": {"$between": [0.2, 0.8]}}));
        assert!(
            f.sql.contains("m.importance >= $3") && f.sql.contains("m.importance <= $4"),
            "{}",
            f.sql
        );
        for bad in [
            json!(5),
            json!([1]),
            json!([1, 2, 3]),
            json!([true, 2]),
            json!({"a": 1}),
        ] {
            let err = compile(&json!({"qty": {"$between": bad}}), &TARGET, 1).unwrap_err();
            assert_eq!(err.kind.sqlstate(), "22023", "{bad}");
        }
    }

    #[test]
    fn mastras_array_operators() {
        let f = sql(json!({"tags": {"$all": ["a", "b"]}}));
        assert!(
            f.sql
                .contains("= 'array' AND (m.metadata #> $3::text[]) @> $4::jsonb"),
            "{}",
            f.sql
        );
        assert_eq!(f.params[1], Param::Jsonb(json!(["a", "b"])));
        let empty = sql(json!({"tags": {"$all": []}}));
        assert_eq!((empty.sql.as_str(), empty.params.len()), ("false", 0));
        assert_eq!(
            sql(json!({"tags": {"$all": "a"}})).params[1],
            Param::Jsonb(json!(["a"]))
        );
        let f = sql(json!({"tags": {"$size": 2}}));
        assert!(
            f.sql
                .contains("jsonb_array_length((m.metadata #> $3::text[])) = $4::float8"),
            "{}",
            f.sql
        );
        let f = sql(json!({"namespace": {"$size": 2}}));
        assert_eq!(
            f.sql,
            "coalesce(cardinality(m.namespace) = $3::float8, false)"
        );
        let f = sql(json!({"namespace": {"$all": ["a"]}}));
        assert_eq!(f.sql, "coalesce(m.namespace @> $3::text[], false)");
        for bad in [
            json!({"tags": {"$size": -1}}),
            json!({"tags": {"$size": 1.5}}),
            json!({"tags": {"$size": "2"}}),
            json!({"tags": {"$all": {"a": 1}}}),
            json!({"content": {"$size": 1}}),
        ] {
            assert!(compile(&bad, &TARGET, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn elem_match_tests_each_element_of_an_array() {
        let f = sql(json!({"items": {"$elemMatch": {"name": "a", "qty": {"$gt": 2}}}}));
        assert!(
            f.sql
                .starts_with("CASE WHEN jsonb_typeof((m.metadata #> $3::text[])) = 'array'"),
            "{}",
            f.sql
        );
        assert!(
            f.sql
                .contains("jsonb_array_elements((m.metadata #> $3::text[])) AS elem1(value)"),
            "{}",
            f.sql
        );
        assert!(f.sql.contains("elem1.value @> $4::jsonb"), "{}", f.sql);
        assert!(
            f.sql.contains("(elem1.value #> $5::text[]) > $6::jsonb"),
            "{}",
            f.sql
        );
        // operators on the element itself, and built-in column names are element keys inside
        let f = sql(json!({"scores": {"$elemMatch": {"$gte": 80, "$lt": 85}}}));
        assert!(
            f.sql.contains("(elem1.value #> $4::text[]) >= $5::jsonb"),
            "{}",
            f.sql
        );
        assert_eq!(f.params[1], Param::TextArray(vec![]));
        let f = sql(json!({"items": {"$elemMatch": {"importance": 1}}}));
        assert!(!f.sql.contains("m.importance"), "{}", f.sql);
        // document paths inside are paths, not operators on the element
        let prefixed = sql(json!({"items": {"$elemMatch": {"$.name": "a", "$.qty": {"$gt": 2}}}}));
        let plain = sql(json!({"items": {"$elemMatch": {"name": "a", "qty": {"$gt": 2}}}}));
        assert_eq!(prefixed, plain);
        // nested: each level has its own alias
        let f = sql(json!({"a": {"$elemMatch": {"b": {"$elemMatch": {"c": 1}}}}}));
        assert!(
            f.sql.contains("elem1.value #> ") && f.sql.contains("AS elem2(value)"),
            "{}",
            f.sql
        );
        assert!(f.sql.contains("elem2.value @> "), "{}", f.sql);
        for bad in [
            json!({"a": {"$elemMatch": {}}}),
            json!({"a": {"$elemMatch": 5}}),
            json!({"namespace": {"$elemMatch": {"x": 1}}}),
        ] {
            assert!(compile(&bad, &TARGET, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn regex_is_bounded_and_bound() {
        let f = sql(json!({"name": {"$regex": "^a'; DROP TABLE x; --"}}));
        assert!(
            f.sql.contains("(m.metadata #>> $3::text[]) ~ $4"),
            "{}",
            f.sql
        );
        assert!(!f.sql.contains("DROP"), "{}", f.sql);
        let f = sql(json!({"name": {"$regex": "^a", "$options": "i"}}));
        assert!(f.sql.contains(" ~* $4"), "{}", f.sql);
        let f = sql(json!({"content": {"$regex": "x"}}));
        assert_eq!(f.sql, "coalesce(m.content ~ $3, false)");
        assert!(
            !has_back_reference("a\\\\1")
                && has_back_reference("(a)\\2")
                && !has_back_reference("\\d+")
        );
        for bad in [
            json!({"name": {"$regex": 5}}),
            json!({"name": {"$options": "i"}}),
            json!({"name": {"$regex": "a", "$options": "g"}}),
            json!({"name": {"$regex": "x".repeat(MAX_REGEX_BYTES + 1)}}),
            json!({"importance": {"$regex": "1"}}),
        ] {
            assert!(compile(&bad, &TARGET, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn not_on_a_field_negates_its_conditions() {
        let f = sql(json!({"n": {"$not": {"$gt": 5}}}));
        assert!(
            f.sql.starts_with("NOT coalesce((coalesce(jsonb_typeof("),
            "{}",
            f.sql
        );
        let f = sql(json!({"importance": {"$not": {"$gte": 0.5}}}));
        assert_eq!(
            f.sql,
            "NOT coalesce((coalesce(m.importance >= $3::real, false)), false)"
        );
        for bad in [
            json!({"n": {"$not": 5}}),
            json!({"n": {"$not": {}}}),
            json!({"n": {"$not": {"a": 1}}}),
        ] {
            assert!(compile(&bad, &TARGET, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn nor_holds_when_none_does() {
        let f = sql(json!({"$nor": [{"a": 1}, {"b": 2}]}));
        assert!(
            f.sql.starts_with("NOT coalesce((") && f.sql.contains(" OR "),
            "{}",
            f.sql
        );
        assert!(compile(&json!({"$nor": []}), &TARGET, 1).is_err());
        assert!(compile(&json!({"$nor": {"a": 1}}), &TARGET, 1).is_err());
    }

    #[test]
    fn not_takes_a_list_as_their_conjunction() {
        let list = sql(json!({"$not": [{"a": 1}, {"b": 2}]}));
        assert!(list.sql.starts_with("NOT coalesce(("), "{}", list.sql);
        assert!(list.sql.contains(" AND "), "{}", list.sql);
        assert_eq!(list.params.len(), 2);
        for bad in [json!([]), json!(true), json!([1])] {
            assert!(compile(&json!({"$not": bad}), &TARGET, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn several_operators_on_one_field_are_anded() {
        let f = sql(json!({"age": {"$gte": 18, "$lt": 65}}));
        assert!(
            f.sql.contains(">= $4::jsonb")
                && f.sql.contains("< $6::jsonb")
                && f.sql.contains(" AND "),
            "{}",
            f.sql
        );
    }

    #[test]
    fn built_in_columns() {
        let f = sql(json!({"importance": {"$gte": 0.5}, "content": {"$ilike": "%key%"}}));
        assert!(f.sql.contains("m.importance >= $"), "{}", f.sql);
        assert!(f.sql.contains("m.content ILIKE $"), "{}", f.sql);
        let f = sql(json!({"created_at": {"$lt": "2026-01-01"}}));
        assert_eq!(f.sql, "coalesce(m.created_at < $3::timestamptz, false)");
        let f = sql(json!({"namespace": {"$contains": "facts"}}));
        assert_eq!(f.sql, "coalesce(m.namespace @> $3::text[], false)");
        let f = sql(json!({"id": {"$in": ["00000000-0000-0000-0000-000000000000"]}}));
        assert!(f.sql.contains("= ANY($3::text[]::uuid[])"), "{}", f.sql);
        assert_eq!(sql(json!({"content": null})).sql, "m.content IS NULL");
    }

    #[test]
    fn document_prefix_addresses_the_document_even_for_column_names() {
        let column = sql(json!({"id": {"$in": ["00000000-0000-0000-0000-000000000000"]}}));
        let document = sql(json!({"$.id": 5}));
        assert!(!document.sql.contains("m.id"), "{}", document.sql);
        assert!(document.sql.contains("m.metadata"), "{}", document.sql);
        assert_ne!(column.sql, document.sql);
        // the same as a plain path when no column has the name, nested and under $or / $not
        assert_eq!(sql(json!({"$.a.b": 1})).sql, sql(json!({"a.b": 1})).sql);
        let nested =
            sql(json!({"$or": [{"$.content": "x"}, {"$not": {"$.importance": {"$gt": 1}}}]}));
        assert!(
            !nested.sql.contains("m.content") && !nested.sql.contains("m.importance"),
            "{}",
            nested.sql
        );
        assert!(compile(&json!({"$.": 1}), &TARGET, 1).is_err());
        assert!(compile(&json!({"$nope": 1}), &TARGET, 1).is_err());
    }

    #[test]
    fn injection_attempts_stay_parameters() {
        let nasty = [
            json!({"x'); DROP TABLE ctx.memories; --": 1}),
            json!({"a": "'; DELETE FROM ctx.memories; --"}),
            json!({"a": {"$like": "%' OR '1'='1"}}),
            json!({"a": {"$in": ["1') OR true --"]}}),
            json!({"a\"b": {"$contains": ["x\\\" OR 1=1"]}}),
            json!({"$or": [{"content); DROP TABLE x; --": 1}]}),
        ];
        for filter in nasty {
            let f = compile(&filter, &TARGET, 1).unwrap();
            for forbidden in ["DROP", "DELETE", "'1'", "OR true", "--", ";"] {
                assert!(
                    !f.sql.contains(forbidden),
                    "{filter} leaked into SQL: {}",
                    f.sql
                );
            }
        }
        // unknown operators are never passed through, whatever they contain
        let e = err(json!({"a": {"$eq); DROP": 1}}));
        assert!(e.message.contains("unknown operator"), "{}", e.message);
    }

    #[test]
    fn malformed_filters_name_the_path() {
        let cases = [
            (json!([1]), "invalid filter: a filter must be a JSON object"),
            (
                json!({"a": {"$gt": true}}),
                "at \"a\": $gt compares numbers or strings",
            ),
            (json!({"a.b": {"$in": 3}}), "at \"a.b\": $in takes an array"),
            (
                json!({"a": {"$exists": "yes"}}),
                "$exists takes true or false",
            ),
            (
                json!({"a": {"$regex": "(a)\\1"}}),
                "at \"a\": $regex patterns cannot hold back-references",
            ),
            (json!({"$xor": []}), "at \"$xor\": unknown logical operator"),
            (
                json!({"$or": []}),
                "at \"$or\": $or takes a non-empty array",
            ),
            (
                json!({"$or": [{"a": 1}, 2]}),
                "at \"$or[1]\": expected a filter object",
            ),
            (
                json!({"$and": [{"$not": 5}]}),
                "at \"$and[0].$not\": $not takes a filter object or a list",
            ),
            (json!({"a..b": 1}), "empty path segment"),
            (
                json!({"a": {"$gt": 1, "b": 2}}),
                "cannot mix operators and plain keys",
            ),
            (json!({"importance": {"$gt": "high"}}), "needs a number"),
            (
                json!({"content": {"$contains": "x"}}),
                "$contains does not apply to \"content\"",
            ),
            (json!({"a": {"$like": 5}}), "$like takes a string pattern"),
            (
                json!({"a": {"$contains": {"k": 1}}}),
                "$contains takes a value or an array",
            ),
            (
                json!({"importance": {"$lt": null}}),
                "cannot compare with null",
            ),
        ];
        for (filter, expected) in cases {
            let e = err(filter.clone());
            assert_eq!(e.kind.sqlstate(), "22023", "{filter}");
            assert!(e.message.contains(expected), "{filter}: {}", e.message);
            assert!(e.hint.is_some());
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let mut filter = json!({"a": 1});
        for _ in 0..40 {
            filter = json!({"$not": filter});
        }
        assert!(err(filter).message.contains("nested deeper than"));
    }

    #[test]
    fn object_literals_compare_as_documents() {
        // an object whose keys are not operators is a literal to compare with
        let f = sql(json!({"a": {"b": 1}}));
        assert_eq!(f.params[1], Param::Jsonb(json!({"b": 1})));
    }
}
