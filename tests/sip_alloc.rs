//! The SIP parser must not touch the heap for a typical message: header spans live
//! inline in the `Message`. Counted with a wrapping global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use pbxbridge::sip;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const INVITE: &[u8] = b"INVITE sip:+4930123456@pbx.example.com;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:+4930123456@pbx.example.com;user=phone>\r\n\
From: \"Alice\" <sip:201@pbx.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:201@10.0.0.5:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO, UPDATE, PRACK\r\n\
Supported: replaces, timer\r\n\
User-Agent: Yealink SIP-T46S 66.86.0.15\r\n\
Reason: SIP;cause=200;text=\"Call completed elsewhere\"\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 5\r\n\
\r\n\
v=0\r\n";

#[test]
fn typical_message_does_not_allocate() {
    // Warm up anything lazily initialised by the test harness.
    let _ = sip::parse(INVITE);
    let before = ALLOCS.load(Ordering::Relaxed);
    let m = sip::parse(INVITE).unwrap();
    let tag = m.from().and_then(|f| f.tag);
    let branch = m.top_via_branch();
    let cause = m.reason_cause();
    let sdp = m.sdp();
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "parse + accessors allocated");
    assert_eq!(tag, Some(&b"1928301774"[..]));
    assert_eq!(branch, Some(&b"z9hG4bK776asdhds"[..]));
    assert_eq!(cause, Some((&b"SIP"[..], 200)));
    assert_eq!(sdp, Some(&b"v=0\r\n"[..]));
    eprintln!(
        "size_of::<Message>() = {} bytes",
        size_of::<sip::Message<'static>>()
    );
}
