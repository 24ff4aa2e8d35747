//! Mounts the page; everything else lives in the library.

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(valle_app::App);
    // Mounting is synchronous: the first view from index.html goes before the next paint.
    valle_app::prerendered::take_over();
}
