//! A small subset of Go's `text/template`, enough for docker's `--format` flags:
//! `{{.A.B}}`, `{{json .A}}`, `{{index .A "k"}}`, `{{join .A ","}}`, `{{upper .A}}`,
//! `{{lower .A}}`, `{{title .A}}`, `{{len .A}}`, `{{println .A}}`, pipes
//! (`{{.A | json}}`) and trim markers (`{{- ... -}}`), evaluated over JSON values.

use serde_json::Value;

/// A template that failed to parse or execute, with docker's wording.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TemplateError(pub(crate) String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Vec<Command>),
}

/// One stage of a pipeline: a function applied to arguments, or a bare operand.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    Call(String, Vec<Operand>),
    Operand(Operand),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `.A.B` as its path segments; `.` is the empty path.
    Field(Vec<String>),
    Str(String),
    Num(f64),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    nodes: Vec<Node>,
}

const FUNCS: &[&str] = &[
    "json", "index", "join", "upper", "lower", "title", "len", "println", "split",
];

impl Template {
    /// Parses `src`; errors name the offending action.
    pub(crate) fn parse(src: &str) -> Result<Self, TemplateError> {
        let mut nodes = Vec::new();
        let mut rest = src;
        while let Some(start) = rest.find("{{") {
            let mut text = rest[..start].to_string();
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| {
                TemplateError(format!(
                    "template parsing error: template: :1: unclosed action in {src:?}"
                ))
            })?;
            let mut inner = &after[..end];
            if let Some(s) = inner.strip_prefix('-') {
                if s.starts_with(char::is_whitespace) || s.is_empty() {
                    text = text.trim_end().to_string();
                    inner = s;
                }
            }
            let mut trim_right = false;
            if let Some(s) = inner.strip_suffix('-') {
                if s.ends_with(char::is_whitespace) || s.is_empty() {
                    trim_right = true;
                    inner = s;
                }
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text));
            }
            nodes.push(Node::Action(parse_pipeline(inner.trim())?));
            rest = &after[end + 2..];
            if trim_right {
                rest = rest.trim_start();
            }
        }
        if !rest.is_empty() {
            nodes.push(Node::Text(rest.to_string()));
        }
        Ok(Template { nodes })
    }

    /// Executes the template over `data`.
    pub(crate) fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action(pipeline) => {
                    let v = eval_pipeline(pipeline, data)?;
                    out.push_str(&display(&v));
                }
            }
        }
        Ok(out)
    }
}

fn tokenize(s: &str) -> Result<Vec<String>, TemplateError> {
    let mut toks = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '|' {
            chars.next();
            toks.push("|".to_string());
        } else if c == '"' || c == '`' {
            chars.next();
            let mut lit = String::from('"');
            let mut closed = false;
            while let Some(ch) = chars.next() {
                if ch == '\\' && c == '"' {
                    match chars.next() {
                        Some('n') => lit.push('\n'),
                        Some('t') => lit.push('\t'),
                        Some(o) => lit.push(o),
                        None => break,
                    }
                } else if ch == c {
                    closed = true;
                    break;
                } else {
                    lit.push(ch);
                }
            }
            if !closed {
                return Err(TemplateError(format!(
                    "template parsing error: unterminated quoted string in {s:?}"
                )));
            }
            toks.push(lit);
        } else {
            let mut word = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '|' {
                    break;
                }
                word.push(ch);
                chars.next();
            }
            toks.push(word);
        }
    }
    Ok(toks)
}

fn parse_operand(tok: &str) -> Result<Operand, TemplateError> {
    if let Some(lit) = tok.strip_prefix('"') {
        return Ok(Operand::Str(lit.to_string()));
    }
    if tok == "." {
        return Ok(Operand::Field(Vec::new()));
    }
    if let Some(path) = tok.strip_prefix('.') {
        return Ok(Operand::Field(
            path.split('.').map(str::to_string).collect(),
        ));
    }
    if let Ok(n) = tok.parse::<f64>() {
        return Ok(Operand::Num(n));
    }
    Err(TemplateError(format!(
        "template parsing error: template: :1: function {tok:?} not defined"
    )))
}

fn parse_pipeline(src: &str) -> Result<Vec<Command>, TemplateError> {
    let toks = tokenize(src)?;
    if toks.is_empty() {
        return Err(TemplateError(
            "template parsing error: template: :1: missing value for command".into(),
        ));
    }
    let mut cmds = Vec::new();
    for stage in toks.split(|t| t == "|") {
        let Some((head, args)) = stage.split_first() else {
            return Err(TemplateError(
                "template parsing error: template: :1: missing command".into(),
            ));
        };
        if FUNCS.contains(&head.as_str()) {
            let ops = args
                .iter()
                .map(|a| parse_operand(a))
                .collect::<Result<_, _>>()?;
            cmds.push(Command::Call(head.clone(), ops));
        } else {
            if !args.is_empty() {
                return Err(TemplateError(format!(
                    "template parsing error: template: :1: can't give argument to non-function {head}"
                )));
            }
            cmds.push(Command::Operand(parse_operand(head)?));
        }
    }
    Ok(cmds)
}

fn lookup(data: &Value, path: &[String]) -> Value {
    let mut cur = data;
    for seg in path {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => return Value::Null,
        }
    }
    cur.clone()
}

fn eval_operand(op: &Operand, data: &Value) -> Value {
    match op {
        Operand::Field(p) => lookup(data, p),
        Operand::Str(s) => Value::String(s.clone()),
        Operand::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
    }
}

fn eval_pipeline(cmds: &[Command], data: &Value) -> Result<Value, TemplateError> {
    let mut prev: Option<Value> = None;
    for cmd in cmds {
        let v = match cmd {
            Command::Operand(op) => eval_operand(op, data),
            Command::Call(name, ops) => {
                let mut args: Vec<Value> = ops.iter().map(|o| eval_operand(o, data)).collect();
                if let Some(p) = prev.take() {
                    args.push(p);
                }
                call(name, &args)?
            }
        };
        prev = Some(v);
    }
    Ok(prev.unwrap_or(Value::Null))
}

fn call(name: &str, args: &[Value]) -> Result<Value, TemplateError> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(TemplateError(format!(
                "template: :1: wrong number of args for {name}: want {n} got {}",
                args.len()
            )))
        }
    };
    match name {
        "json" => {
            arity(1)?;
            Ok(Value::String(
                serde_json::to_string(&args[0]).unwrap_or_default(),
            ))
        }
        "index" => {
            if args.len() < 2 {
                return Err(TemplateError(
                    "template: :1: wrong number of args for index".into(),
                ));
            }
            let mut cur = args[0].clone();
            for key in &args[1..] {
                cur = match (&cur, key) {
                    (Value::Object(m), Value::String(k)) => {
                        m.get(k).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Array(a), Value::Number(n)) => n
                        .as_u64()
                        .and_then(|i| usize::try_from(i).ok())
                        .and_then(|i| a.get(i).cloned())
                        .ok_or_else(|| {
                            TemplateError(format!(
                                "template: :1: error calling index: index out of range: {n}"
                            ))
                        })?,
                    _ => Value::Null,
                };
            }
            Ok(cur)
        }
        "join" => {
            arity(2)?;
            let sep = display(&args[1]);
            let items: Vec<String> = match &args[0] {
                Value::Array(a) => a.iter().map(display).collect(),
                Value::Null => Vec::new(),
                other => vec![display(other)],
            };
            Ok(Value::String(items.join(&sep)))
        }
        "split" => {
            arity(2)?;
            let s = display(&args[0]);
            let sep = display(&args[1]);
            Ok(Value::Array(
                s.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            ))
        }
        "upper" => {
            arity(1)?;
            Ok(Value::String(display(&args[0]).to_uppercase()))
        }
        "lower" => {
            arity(1)?;
            Ok(Value::String(display(&args[0]).to_lowercase()))
        }
        "title" => {
            arity(1)?;
            let s = display(&args[0]);
            let mut out = String::with_capacity(s.len());
            let mut at_start = true;
            for c in s.chars() {
                if at_start {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                at_start = !c.is_alphanumeric();
            }
            Ok(Value::String(out))
        }
        "len" => {
            arity(1)?;
            let n = match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::String(s) => s.len(),
                _ => {
                    return Err(TemplateError(
                        "template: :1: error calling len: len of nil".into(),
                    ))
                }
            };
            Ok(Value::from(n))
        }
        "println" => {
            let parts: Vec<String> = args.iter().map(display).collect();
            Ok(Value::String(format!("{}\n", parts.join(" "))))
        }
        other => Err(TemplateError(format!(
            "template: :1: function {other:?} not defined"
        ))),
    }
}

/// Prints a value the way Go's `fmt.Print` prints the decoded JSON value.
pub(crate) fn display(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{f:.0}")
                } else {
                    f.to_string()
                }
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(display_nested).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", display_nested(&m[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn display_nested(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        other => display(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: &Value) -> String {
        Template::parse(t).and_then(|t| t.render(v)).unwrap()
    }

    #[test]
    fn renders_field_paths() {
        let v = json!({"State": {"Status": "running", "Pid": 42, "Running": true}, "Name": "/web"});
        assert_eq!(render("{{.State.Status}}", &v), "running");
        assert_eq!(render("{{.State.Pid}} {{.State.Running}}", &v), "42 true");
        assert_eq!(render("name={{ .Name }}!", &v), "name=/web!");
        assert_eq!(render("{{.Missing}}", &v), "<no value>");
    }

    #[test]
    fn renders_json_and_pipes() {
        let v = json!({"Config": {"Env": ["A=1", "B=2"]}, "Labels": null});
        assert_eq!(render("{{json .Config.Env}}", &v), r#"["A=1","B=2"]"#);
        assert_eq!(render("{{.Config.Env | json}}", &v), r#"["A=1","B=2"]"#);
        assert_eq!(render("{{json .Labels}}", &v), "null");
        assert_eq!(render("{{join .Config.Env \",\"}}", &v), "A=1,B=2");
        assert_eq!(render("{{len .Config.Env}}", &v), "2");
        assert_eq!(render("{{.Config.Env}}", &v), "[A=1 B=2]");
    }

    #[test]
    fn renders_index_and_string_functions() {
        let v = json!({"Labels": {"com.x": "y"}, "S": "Hello world"});
        assert_eq!(render(r#"{{index .Labels "com.x"}}"#, &v), "y");
        assert_eq!(
            render("{{upper .S}}|{{lower .S}}", &v),
            "HELLO WORLD|hello world"
        );
        assert_eq!(render("{{title \"ab cd\"}}", &v), "Ab Cd");
        assert_eq!(render("{{.Labels}}", &v), "map[com.x:y]");
    }

    #[test]
    fn trim_markers_remove_whitespace() {
        let v = json!({"A": "x"});
        assert_eq!(render("a  {{- .A -}}  b", &v), "axb");
    }

    #[test]
    fn rejects_unknown_function_and_unclosed_action() {
        assert!(Template::parse("{{nosuch .A}}").is_err());
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{}}").is_err());
    }

    #[test]
    fn dot_renders_the_whole_value() {
        assert_eq!(render("{{.}}", &json!("abc")), "abc");
        assert_eq!(render("{{json .}}", &json!({"a": 1})), r#"{"a":1}"#);
    }
}
