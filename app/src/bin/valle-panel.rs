//! The officers' dashboard's module (`valle-panel`), served at `/panel/`. It links neither
//! the scoring page nor the model.

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(valle_app::PanelApp);
}
