//! The page's handle on its scoring Web Worker (`scorer/`): the model runs there, so this
//! page's own module links no ONNX runtime and paints and takes input while the model loads.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures_channel::oneshot;
use leptos::prelude::*;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::decision::disclosure::Disclosure;
use valle_shared::decision::scorer::{ScoreRequest, ScorerMessage};
use valle_shared::Score;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{MessageEvent, Worker};

/// The worker's loader (`public/scorer-loader.js`): it loads Trunk's worker script and its
/// wasm. A plain same-origin script, so the page's CSP needs no `blob:`.
pub const LOADER: &str = "/scorer-loader.js";

/// Where the model stands, for the score card.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelState {
    Loading,
    Ready { load_ms: f64 },
    Failed(String),
}

type Pending = Rc<RefCell<HashMap<u32, oneshot::Sender<Result<Score, ErrorCode>>>>>;

/// Requests made before the worker said it is ready (it would drop them), sent then.
type Early = Rc<RefCell<Vec<String>>>;

/// The model will not come: the card says why, and every waiting request answers
/// [`ErrorCode::Model`] (dropping its sender does).
fn give_up(state: RwSignal<ModelState>, early: &Early, pending: &Pending, reason: String) {
    state.set(ModelState::Failed(reason));
    early.borrow_mut().clear();
    pending.borrow_mut().clear();
}

thread_local! {
    /// The page's scorer, for `valleScore`.
    static CURRENT: RefCell<Option<Scorer>> = const { RefCell::new(None) };
}

/// The scorer the scoring page started, if it has.
pub fn current() -> Option<Scorer> {
    CURRENT.with(|current| current.borrow().clone())
}

/// One worker per page, started by the scoring page.
#[derive(Clone)]
pub struct Scorer {
    worker: Option<Worker>,
    pending: Pending,
    early: Early,
    next_id: Rc<Cell<u32>>,
    pub state: RwSignal<ModelState>,
}

impl Scorer {
    pub fn start() -> Scorer {
        let state = RwSignal::new(ModelState::Loading);
        let pending: Pending = Rc::default();
        let worker = match Worker::new(LOADER) {
            Ok(worker) => worker,
            Err(error) => {
                state.set(ModelState::Failed(format!("{error:?}")));
                return Scorer {
                    worker: None,
                    pending,
                    early: Rc::default(),
                    next_id: Rc::default(),
                    state,
                };
            }
        };
        let answered = Rc::clone(&pending);
        let early: Early = Rc::default();
        let waiting = Rc::clone(&early);
        let sender = worker.clone();
        let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            match serde_json::from_str::<ScorerMessage>(&text) {
                Ok(ScorerMessage::Ready {
                    model_load_ms,
                    error: None,
                }) => {
                    state.set(ModelState::Ready {
                        load_ms: model_load_ms,
                    });
                    for request in waiting.borrow_mut().drain(..) {
                        let _ = sender.post_message(&JsValue::from_str(&request));
                    }
                }
                Ok(ScorerMessage::Ready {
                    error: Some(error), ..
                }) => give_up(state, &waiting, &answered, error),
                Ok(ScorerMessage::Scored { id, result }) => {
                    if let Some(sender) = answered.borrow_mut().remove(&id) {
                        let _ = sender.send(result);
                    }
                }
                Err(_) => {}
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        // A worker script that does not load or start: the model will never come.
        let failed = Rc::clone(&pending);
        let never_sent = Rc::clone(&early);
        let on_error = Closure::<dyn Fn(web_sys::Event)>::new(move |_| {
            give_up(
                state,
                &never_sent,
                &failed,
                "the scoring worker did not start".to_owned(),
            );
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // The handlers live as long as the page.
        on_message.forget();
        on_error.forget();
        let scorer = Scorer {
            worker: Some(worker),
            pending,
            early,
            next_id: Rc::default(),
            state,
        };
        CURRENT.with(|current| *current.borrow_mut() = Some(scorer.clone()));
        scorer
    }

    /// Scores a body in the worker: the score, or the error code the edge would give
    /// ([`ErrorCode::Model`] when the model could not load). Asked before the model is ready, it waits.
    pub async fn score(&self, body: String) -> Result<Score, ErrorCode> {
        let worker = self.worker.as_ref().ok_or(ErrorCode::Model)?;
        let state = self.state.get_untracked();
        // A worker that failed to start would never answer.
        if matches!(state, ModelState::Failed(_)) {
            return Err(ErrorCode::Model);
        }
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let (sender, receiver) = oneshot::channel();
        self.pending.borrow_mut().insert(id, sender);
        let request =
            serde_json::to_string(&ScoreRequest { id, body }).map_err(|_| ErrorCode::Internal)?;
        if state == ModelState::Loading {
            self.early.borrow_mut().push(request);
        } else if worker.post_message(&JsValue::from_str(&request)).is_err() {
            self.pending.borrow_mut().remove(&id);
            return Err(ErrorCode::Model);
        }
        receiver.await.unwrap_or(Err(ErrorCode::Model))
    }
}

/// What `valleScore` answers for a body: the score as the applicant is shown it (as the
/// edge answers it, `models/disclosure.json` applied), or `{"error": {"code": ...}}` with
/// the code the edge would give.
pub async fn score_json(body: String) -> String {
    let result = match current() {
        Some(scorer) => scorer.score(body).await,
        None => Err(ErrorCode::Model),
    };
    let error = |code: ErrorCode| serde_json::json!({ "error": { "code": code } }).to_string();
    match result {
        Ok(score) => serde_json::to_string(&Disclosure::committed().for_applicant(&score))
            .unwrap_or_else(|_| error(ErrorCode::Internal)),
        Err(code) => error(code),
    }
}
