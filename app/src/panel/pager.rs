//! Paging a list by the cursors the API gives: this page's cursor and those of the pages
//! before it, so going back returns exactly to the page that came before.

use leptos::prelude::*;

use super::session::{status_line, Load};
use crate::chrome::{data_table, ui, use_lang};

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

/// How a [`PagedList`] shows: its table, its pager and the line of an empty list.
#[derive(Clone, Copy)]
pub(super) struct ListLayout {
    /// The table's test id.
    pub table: &'static str,
    /// The columns' names, in Spanish and English.
    pub columns: &'static [(&'static str, &'static str)],
    /// The [`Pager`]'s name.
    pub pager: &'static str,
    /// The pager's back and forward labels, in Spanish and English.
    pub back: (&'static str, &'static str),
    pub forward: (&'static str, &'static str),
    /// The test id and line, in Spanish and English, shown instead of an empty table;
    /// `None` shows the empty table.
    pub empty: Option<(&'static str, &'static str, &'static str)>,
}

/// A list fetched a page at a time: the loading or error line, then the page's rows as a
/// table with the [`Pager`] under it.
#[component]
pub(super) fn PagedList<P, R, C, V>(
    page: RwSignal<Load<P>>,
    pages: Pages<C>,
    layout: ListLayout,
    /// The page's rows and the cursor of the page after it.
    split: fn(P) -> (Vec<R>, Option<C>),
    /// One row of the table.
    row: impl Fn(R) -> V + Copy + Send + Sync + 'static,
) -> impl IntoView
where
    P: Clone + Send + Sync + 'static,
    R: 'static,
    C: Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let lang = use_lang();
    let ListLayout {
        table,
        columns,
        pager,
        back,
        forward,
        empty,
    } = layout;
    let shown = move || {
        let Load::Ready(found) = page.get() else {
            return None;
        };
        let (rows, next) = split(found);
        if let (true, Some((id, es, en))) = (rows.is_empty(), empty) {
            return Some(
                view! { <p class="muted" data-testid=id>{ui(lang.get(), es, en)}</p> }.into_any(),
            );
        }
        Some(
            view! {
                {data_table(table, lang.get(), columns, rows.into_iter().map(row).collect_view())}
                <Pager pages next name=pager back forward />
            }
            .into_any(),
        )
    };
    view! {
        {move || page.with(|load| status_line(load, lang.get()))}
        {shown}
    }
}
