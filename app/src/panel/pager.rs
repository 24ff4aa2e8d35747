//! Paging a list by the cursors the API gives: this page's cursor and those of the pages
//! before it, so going back returns exactly to the page that came before.

use leptos::prelude::*;

use crate::chrome::{head_row, ui, use_lang};

/// Where a list stands: the cursor of the page shown (`None` for the first) and the
/// cursors of the pages seen before it.
pub(super) struct Pages<C: Send + Sync + 'static> {
    cursor: RwSignal<Option<C>>,
    previous: RwSignal<Vec<Option<C>>>,
}

impl<C: Send + Sync + 'static> Clone for Pages<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C: Send + Sync + 'static> Copy for Pages<C> {}

impl<C: Clone + Send + Sync + 'static> Pages<C> {
    pub(super) fn new() -> Pages<C> {
        Pages {
            cursor: RwSignal::new(None),
            previous: RwSignal::new(Vec::new()),
        }
    }

    /// The cursor of the page shown; reading it makes the caller follow the paging.
    pub(super) fn cursor(self) -> Option<C> {
        self.cursor.get()
    }

    /// Back to the first page, as after a change of filters.
    pub(super) fn reset(self) {
        self.previous.set(Vec::new());
        self.cursor.set(None);
    }

    fn back(self) {
        let mut stack = self.previous.get_untracked();
        if let Some(back) = stack.pop() {
            self.previous.set(stack);
            self.cursor.set(back);
        }
    }

    fn forward(self, next: C) {
        self.previous
            .update(|stack| stack.push(self.cursor.get_untracked()));
        self.cursor.set(Some(next));
    }
}

/// The two buttons under a list: back to the page before, on to `next` (none on the last
/// page). Their test ids are `{name}-previous` and `{name}-next`.
#[component]
pub(super) fn Pager<C>(
    pages: Pages<C>,
    next: Option<C>,
    name: &'static str,
    /// The back button's label, in Spanish and English.
    back: (&'static str, &'static str),
    /// The forward button's label.
    forward: (&'static str, &'static str),
) -> impl IntoView
where
    C: Clone + Send + Sync + 'static,
{
    let lang = use_lang();
    let last = next.is_none();
    view! {
        <div class="pager">
            <button type="button" class="secondary" data-testid=format!("{name}-previous")
                disabled=move || pages.previous.with(Vec::is_empty)
                on:click=move |_| pages.back()>
                {move || ui(lang.get(), back.0, back.1)}
            </button>
            <button type="button" class="secondary" data-testid=format!("{name}-next")
                disabled=last
                on:click=move |_| {
                    if let Some(next) = next.clone() {
                        pages.forward(next);
                    }
                }>
                {move || ui(lang.get(), forward.0, forward.1)}
            </button>
        </div>
    }
}

/// A page of a list as a table, its rows the children, with the [`Pager`] under it.
#[component]
pub(super) fn PagedTable<C>(
    /// The table's test id.
    table: &'static str,
    /// The columns' names, in Spanish and English.
    columns: &'static [(&'static str, &'static str)],
    pages: Pages<C>,
    next: Option<C>,
    name: &'static str,
    back: (&'static str, &'static str),
    forward: (&'static str, &'static str),
    children: Children,
) -> impl IntoView
where
    C: Clone + Send + Sync + 'static,
{
    let lang = use_lang();
    view! {
        <div class="table-wrap">
            <table data-testid=table>
                {move || head_row(lang.get(), columns)}
                <tbody>{children()}</tbody>
            </table>
        </div>
        <Pager pages next name back forward />
    }
}
