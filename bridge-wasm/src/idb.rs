//! The little of IndexedDB the bridge needs: one database with one object
//! store of JS objects keyed by their `id`; put, delete, read all. Requests are
//! awaited through their success/error events, whose callbacks are released
//! once the request settles (nothing leaks per request).

use std::cell::RefCell;
use std::rc::Rc;

use futures_channel::oneshot;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{IdbDatabase, IdbObjectStore, IdbRequest, IdbTransactionMode};

const STORE: &str = "entries";

/// An open database.
#[derive(Debug, Clone)]
pub(crate) struct Db(IdbDatabase);

type Callback = Closure<dyn FnMut(web_sys::Event)>;

/// Waits for `req` to settle; its result, or what went wrong.
async fn settled(req: &IdbRequest) -> Result<JsValue, String> {
    let (tx, rx) = oneshot::channel::<bool>();
    let tx = Rc::new(RefCell::new(Some(tx)));
    let on = |ok: bool| {
        let tx = Rc::clone(&tx);
        Callback::new(move |_e: web_sys::Event| {
            if let Some(tx) = tx.borrow_mut().take() {
                let _ = tx.send(ok);
            }
        })
    };
    let (success, error) = (on(true), on(false));
    req.set_onsuccess(Some(success.as_ref().unchecked_ref()));
    req.set_onerror(Some(error.as_ref().unchecked_ref()));
    let ok = rx.await.unwrap_or(false);
    req.set_onsuccess(None);
    req.set_onerror(None);
    if ok {
        req.result().map_err(|e| crate::js::message_of(&e))
    } else {
        Err(req.error().ok().flatten().map_or_else(|| "IndexedDB request failed".into(), |e| e.message()))
    }
}

impl Db {
    /// Opens (creating on first use) database `name`; `None` where the page has no IndexedDB.
    pub(crate) async fn open(name: &str) -> Result<Option<Db>, String> {
        let Some(factory) = web_sys::window().and_then(|w| w.indexed_db().ok().flatten()) else { return Ok(None) };
        let open = factory.open_with_u32(name, 1).map_err(|e| crate::js::message_of(&e))?;
        let request = open.clone();
        let upgrade = Callback::new(move |_e: web_sys::Event| {
            if let Ok(db) = request.result().and_then(|r| r.dyn_into::<IdbDatabase>()) {
                let params = web_sys::IdbObjectStoreParameters::new();
                params.set_key_path(&"id".into());
                let _ = db.create_object_store_with_optional_parameters(STORE, &params);
            }
        });
        open.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
        let result = settled(&open).await;
        open.set_onupgradeneeded(None);
        let db: IdbDatabase = result?.dyn_into().map_err(|_| "not a database")?;
        Ok(Some(Db(db)))
    }

    fn store(&self, mode: IdbTransactionMode) -> Result<IdbObjectStore, String> {
        let tx = self.0.transaction_with_str_and_mode(STORE, mode).map_err(|e| crate::js::message_of(&e))?;
        tx.object_store(STORE).map_err(|e| crate::js::message_of(&e))
    }

    /// Writes `value` (an object with an `id`). Transactions on the store run in the
    /// order they were created, so a put followed by a delete of the same id ends deleted.
    pub(crate) fn put(&self, value: &JsValue) -> Result<impl Future<Output = Result<(), String>> + use<>, String> {
        let req = self.store(IdbTransactionMode::Readwrite)?.put(value).map_err(|e| crate::js::message_of(&e))?;
        Ok(async move { settled(&req).await.map(|_| ()) })
    }

    /// Deletes the entry `id` (nothing if there is none).
    pub(crate) fn delete(&self, id: &str) -> Result<impl Future<Output = Result<(), String>> + use<>, String> {
        let req =
            self.store(IdbTransactionMode::Readwrite)?.delete(&id.into()).map_err(|e| crate::js::message_of(&e))?;
        Ok(async move { settled(&req).await.map(|_| ()) })
    }

    /// Every entry.
    pub(crate) async fn all(&self) -> Result<Vec<JsValue>, String> {
        let req = self.store(IdbTransactionMode::Readonly)?.get_all().map_err(|e| crate::js::message_of(&e))?;
        Ok(js_sys::Array::from(&settled(&req).await?).iter().collect())
    }
}
