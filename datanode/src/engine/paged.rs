//! `Paged<T>`: a vector stored in fixed-size pages.
//!
//! The memory engine keeps every entry of a table in one dense sequence so that a random entry,
//! an eviction sample or a `SCAN` step is an index away. A plain `Vec` would waste up to half its
//! capacity after growing and move every entry on each doubling; pages of `PAGE` elements waste at
//! most one page and never move an element once placed, and keeping the entries inline (not boxed)
//! saves a pointer chase on every lookup.
//!
//! Invariant: every page but the last is full, and no page holds more than `PAGE` elements.

/// Elements per page.
const PAGE: usize = 256;

/// A dense sequence of `T` in pages.
#[derive(Debug)]
pub struct Paged<T> {
    pages: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Paged<T> {
    fn default() -> Self {
        Paged {
            pages: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Paged<T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `v`.
    pub fn push(&mut self, v: T) {
        if self.pages.last().is_none_or(|p| p.len() == PAGE) {
            self.pages.push(Vec::with_capacity(PAGE));
        }
        self.pages
            .last_mut()
            .expect("a page with room was just ensured")
            .push(v);
        self.len += 1;
    }

    /// The element at `i`; panics when out of bounds (our bug, never input).
    pub fn get(&self, i: usize) -> &T {
        &self.pages[i / PAGE][i % PAGE]
    }

    /// The element at `i`, mutably.
    pub fn get_mut(&mut self, i: usize) -> &mut T {
        &mut self.pages[i / PAGE][i % PAGE]
    }

    /// Removes the element at `i`, moving the last element into its place.
    pub fn swap_remove(&mut self, i: usize) -> T {
        let last_page = self
            .pages
            .last_mut()
            .expect("swap_remove on a non-empty sequence");
        let last = last_page.pop().expect("the last page is never empty");
        if last_page.is_empty() {
            self.pages.pop();
        }
        self.len -= 1;
        if i == self.len {
            return last;
        }
        std::mem::replace(self.get_mut(i), last)
    }

    /// Iterates in index order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.pages.iter().flatten()
    }

    /// Bytes of element storage reserved.
    pub fn capacity_bytes(&self) -> usize {
        self.pages.len() * PAGE * std::mem::size_of::<T>()
    }
}

impl<T> std::ops::Index<usize> for Paged<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        self.get(i)
    }
}

impl<T> std::ops::IndexMut<usize> for Paged<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        self.get_mut(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_remove_keeps_dense_order_across_pages() {
        let mut p = Paged::default();
        for i in 0..(PAGE * 2 + 3) {
            p.push(i);
        }
        assert_eq!(p.swap_remove(5), 5);
        assert_eq!(*p.get(5), PAGE * 2 + 2);
        assert_eq!(p.len(), PAGE * 2 + 2);
        while !p.is_empty() {
            let last = p.len() - 1;
            p.swap_remove(last);
        }
        assert_eq!(p.iter().count(), 0);
        assert_eq!(p.capacity_bytes(), 0);
    }
}
