//! When the scoring page's app draws itself over the prerendered first view: once the
//! browser has painted the copy and reported it as the page's largest contentful paint.
//! Mounted sooner, the app replaces the copy before that report, the browser drops the
//! copy's candidate, and the app's identical paragraph becomes the page's largest paint,
//! timed by the wasm download instead of the HTML.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// The longest the app waits for the report: a hidden tab gets none, and the copy takes
/// input meanwhile anyway.
const MAX_WAIT_MS: i32 = 1_000;

const LARGEST_PAINT: &str = "largest-contentful-paint";

/// What is left to run: nothing once one of the signals has run it.
type Pending = Rc<RefCell<Option<Box<dyn FnOnce()>>>>;

/// Runs `then` once, in a task of its own, after the first largest-contentful-paint report;
/// where the browser has no such reports, after the next painted frame; at the latest after
/// [`MAX_WAIT_MS`].
pub fn after_first_view(then: impl FnOnce() + 'static) {
    let pending: Pending = Rc::new(RefCell::new(Some(Box::new(then))));
    let run = move || {
        // Taken before it runs, so a second signal finds nothing to do.
        let then = pending.borrow_mut().take();
        if let Some(then) = then {
            then();
        }
    };
    let observed = observe_largest_paint(run.clone());
    if !observed {
        after_next_paint(run.clone());
    }
    let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(
        Closure::once_into_js(run).unchecked_ref(),
        MAX_WAIT_MS,
    );
}

/// Runs `then` in a task after the browser has painted what it has: a zero timeout set
/// inside an animation frame runs after that frame.
pub fn after_next_paint(then: impl FnOnce() + 'static) {
    let after_paint = Closure::once_into_js(then);
    let in_frame = Closure::once_into_js(move || {
        let _ = window().set_timeout_with_callback(after_paint.unchecked_ref());
    });
    let _ = window().request_animation_frame(in_frame.unchecked_ref());
}

/// Watches for the first largest-contentful-paint report (including one already made) and
/// then runs `then` in a task of its own; false when the browser makes no such reports.
fn observe_largest_paint(then: impl FnOnce() + Clone + 'static) -> bool {
    let constructor = js_sys::Reflect::get(&js_sys::global(), &"PerformanceObserver".into())
        .unwrap_or(JsValue::UNDEFINED);
    let supported = js_sys::Reflect::get(&constructor, &"supportedEntryTypes".into())
        .ok()
        .and_then(|types| types.dyn_into::<js_sys::Array>().ok())
        .is_some_and(|types| types.includes(&LARGEST_PAINT.into(), 0));
    if !supported {
        return false;
    }
    let on_entries = Closure::<
        dyn Fn(web_sys::PerformanceObserverEntryList, web_sys::PerformanceObserver),
    >::new(
        move |entries: web_sys::PerformanceObserverEntryList,
              observer: web_sys::PerformanceObserver| {
            if entries.get_entries().length() == 0 {
                return;
            }
            observer.disconnect();
            let then = then.clone();
            let _ = window().set_timeout_with_callback(Closure::once_into_js(then).unchecked_ref());
        },
    );
    let Ok(observer) = web_sys::PerformanceObserver::new(on_entries.as_ref().unchecked_ref())
    else {
        return false;
    };
    // `type` with `buffered` (web-sys only knows `entryTypes`, which cannot be buffered).
    let options = js_sys::Object::new();
    let set = |key: &str, value: JsValue| js_sys::Reflect::set(&options, &key.into(), &value);
    if set("type", LARGEST_PAINT.into()).is_err() || set("buffered", true.into()).is_err() {
        return false;
    }
    observer.observe(options.unchecked_ref());
    // The observer calls back at most a few times and is then disconnected.
    on_entries.forget();
    true
}
