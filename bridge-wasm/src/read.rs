//! Reading the page's plain JS objects (config, tool inputs) field by field,
//! with errors that name the field (`config.policies.fetch.maxRetries: ...`).
//! Done here rather than with serde: deserializers for these types, and the
//! float formatting their error messages need, would add ~50 KB to the module.

use wasm_bindgen::JsValue;

/// An object being read; `finish()` refuses fields nobody asked for (typos).
pub(crate) struct Obj {
    value: JsValue,
    path: String,
    read: Vec<&'static str>,
}

fn kind_of(v: &JsValue) -> &'static str {
    if v.is_null() {
        "null"
    } else if v.as_bool().is_some() {
        "a boolean"
    } else if v.as_f64().is_some() {
        "a number"
    } else if v.is_string() {
        "a string"
    } else if js_sys::Array::is_array(v) {
        "an array"
    } else if v.is_function() {
        "a function"
    } else {
        "an object"
    }
}

impl Obj {
    /// `value` at `path`; `None` when it is `undefined` or `null`.
    pub(crate) fn new(value: &JsValue, path: &str) -> Result<Option<Obj>, String> {
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        if !value.is_object() || js_sys::Array::is_array(value) || value.is_function() {
            return Err(format!("{path}: must be an object, got {}", kind_of(value)));
        }
        Ok(Some(Obj { value: value.clone(), path: path.to_owned(), read: Vec::new() }))
    }

    fn field(&mut self, key: &'static str) -> Option<JsValue> {
        self.read.push(key);
        crate::js::get(&self.value, key)
    }

    fn name(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn wrong(&self, key: &str, want: &str, got: &JsValue) -> String {
        format!("{}: must be {want}, got {}", self.name(key), kind_of(got))
    }

    pub(crate) fn string(&mut self, key: &'static str) -> Result<Option<String>, String> {
        match self.field(key) {
            None => Ok(None),
            Some(v) => v.as_string().map(Some).ok_or_else(|| self.wrong(key, "a string", &v)),
        }
    }

    pub(crate) fn bool(&mut self, key: &'static str) -> Result<Option<bool>, String> {
        match self.field(key) {
            None => Ok(None),
            Some(v) => v.as_bool().map(Some).ok_or_else(|| self.wrong(key, "true or false", &v)),
        }
    }

    pub(crate) fn f64(&mut self, key: &'static str) -> Result<Option<f64>, String> {
        match self.field(key) {
            None => Ok(None),
            Some(v) => v.as_f64().filter(|n| n.is_finite()).map(Some).ok_or_else(|| self.wrong(key, "a number", &v)),
        }
    }

    /// A whole number in `0..=2^53`.
    pub(crate) fn u64(&mut self, key: &'static str) -> Result<Option<u64>, String> {
        match self.f64(key)? {
            None => Ok(None),
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_992.0 => Ok(Some(n as u64)),
            Some(_) => Err(format!("{}: must be a whole number of 0 or more", self.name(key))),
        }
    }

    pub(crate) fn u32(&mut self, key: &'static str) -> Result<Option<u32>, String> {
        match self.u64(key)? {
            None => Ok(None),
            Some(n) => u32::try_from(n).map(Some).map_err(|_| format!("{}: is too large", self.name(key))),
        }
    }

    pub(crate) fn strings(&mut self, key: &'static str) -> Result<Option<Vec<String>>, String> {
        let Some(v) = self.field(key) else { return Ok(None) };
        if !js_sys::Array::is_array(&v) {
            return Err(self.wrong(key, "an array of strings", &v));
        }
        js_sys::Array::from(&v)
            .iter()
            .map(|s| s.as_string().ok_or_else(|| self.wrong(key, "an array of strings", &v)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A string or an array of strings, as a list.
    pub(crate) fn string_or_strings(&mut self, key: &'static str) -> Result<Option<Vec<String>>, String> {
        match crate::js::get(&self.value, key) {
            Some(v) if v.is_string() => self.string(key).map(|s| s.map(|s| vec![s])),
            Some(v) if !js_sys::Array::is_array(&v) => {
                self.read.push(key);
                Err(self.wrong(key, "a string or an array of strings", &v))
            }
            _ => self.strings(key),
        }
    }

    pub(crate) fn obj(&mut self, key: &'static str) -> Result<Option<Obj>, String> {
        let path = self.name(key);
        match self.field(key) {
            None => Ok(None),
            Some(v) => Obj::new(&v, &path),
        }
    }

    /// A feature switch with settings: absent → `None`; `false` → `Some(None)`; `true` or an
    /// object of settings → `Some(Some(settings))` (`true` reads as `{}`).
    pub(crate) fn switch(&mut self, key: &'static str) -> Result<Option<Option<Obj>>, String> {
        match crate::js::get(&self.value, key).map(|v| v.as_bool()) {
            None => Ok(None),
            Some(Some(on)) => {
                self.read.push(key);
                let empty: JsValue = js_sys::Object::new().into();
                Ok(Some(if on { Obj::new(&empty, &self.name(key))? } else { None }))
            }
            Some(None) => match self.obj(key) {
                Err(_) => Err(format!("{}: must be true, false or an object", self.name(key))),
                Ok(o) => Ok(Some(o)),
            },
        }
    }

    /// Every `(key, object)` of a map-like field (`policies`, `breakers`).
    pub(crate) fn map(&mut self, key: &'static str) -> Result<Vec<(String, Obj)>, String> {
        let Some(mut m) = self.obj(key)? else { return Ok(Vec::new()) };
        let entries = js_sys::Object::entries(m.value.unchecked_ref::<js_sys::Object>());
        m.read.clear();
        entries
            .iter()
            .map(|pair| {
                let pair = js_sys::Array::from(&pair);
                let k = pair.get(0).as_string().unwrap_or_default();
                let path = m.name(&k);
                Obj::new(&pair.get(1), &path)?
                    .map(|o| (k, o))
                    .ok_or_else(|| format!("{path}: must be an object, got null"))
            })
            .collect()
    }

    /// Fails on a field that was never read: a misspelt setting must not pass silently.
    pub(crate) fn finish(self) -> Result<(), String> {
        let keys = js_sys::Object::keys(self.value.unchecked_ref::<js_sys::Object>());
        for k in keys.iter().filter_map(|k| k.as_string()) {
            if !self.read.iter().any(|r| *r == k) {
                let mut known = self.read.clone();
                known.sort_unstable();
                return Err(format!("{}: unknown field `{k}`; known fields: {}", self.path, known.join(", ")));
            }
        }
        Ok(())
    }
}

use wasm_bindgen::JsCast;
