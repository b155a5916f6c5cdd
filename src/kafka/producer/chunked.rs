//! A FIFO kept as a list of small fixed-size chunks. A partition can hold a million queued
//! records when the application produces faster than the network; one growing `VecDeque` would
//! copy them all at every doubling and fault in fresh pages each time, on the caller's thread.

use std::collections::VecDeque;

/// Items per chunk: small enough that chunks come from the allocator's reusable heap.
const CHUNK: usize = 256;

pub struct Chunked<T> {
    chunks: VecDeque<VecDeque<T>>,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: VecDeque::new(),
        }
    }
}

impl<T> Chunked<T> {
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn push_back(&mut self, item: T) {
        match self.chunks.back_mut() {
            Some(last) if last.len() < CHUNK => last.push_back(item),
            _ => {
                let mut chunk = VecDeque::with_capacity(CHUNK);
                chunk.push_back(item);
                self.chunks.push_back(chunk);
            }
        }
    }

    pub fn push_front(&mut self, item: T) {
        match self.chunks.front_mut() {
            Some(first) if first.len() < CHUNK => first.push_front(item),
            _ => {
                let mut chunk = VecDeque::with_capacity(CHUNK);
                chunk.push_front(item);
                self.chunks.push_front(chunk);
            }
        }
    }

    pub fn front(&self) -> Option<&T> {
        self.chunks.front().and_then(VecDeque::front)
    }

    pub fn pop_front(&mut self) -> Option<T> {
        let first = self.chunks.front_mut()?;
        let item = first.pop_front();
        if first.is_empty() {
            self.chunks.pop_front();
        }
        item
    }

    /// Takes every item out, in order.
    pub fn take_all(&mut self) -> impl Iterator<Item = T> {
        std::mem::take(&mut self.chunks).into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_fifo_order_across_chunks_and_front_pushes() {
        let mut q = Chunked::default();
        for i in 0..1000 {
            q.push_back(i);
        }
        assert_eq!(q.front(), Some(&0));
        let first: Vec<i32> = (0..300).map(|_| q.pop_front().unwrap()).collect();
        assert_eq!(first, (0..300).collect::<Vec<_>>());
        // A retry puts taken items back in front, in their order.
        for i in (0..300).rev() {
            q.push_front(i);
        }
        let all: Vec<i32> = q.take_all().collect();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert!(q.is_empty());
        assert_eq!(q.pop_front(), None);
    }
}
