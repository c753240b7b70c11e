//! What a hook answers (a script's stdout, a webhook's body): any bytes parse into a hook
//! response or a "garbage" error, and the response a hook sets is valid HTTP or refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tuskd::hooks::parse_response;

fuzz_target!(|data: &[u8]| {
    if let Ok(answer) = parse_response("pre-create", data)
        && let Ok((status, headers, _body)) = answer.http_response.validated("pre-create")
    {
        if let Some(s) = status {
            assert!((100..600).contains(&s.as_u16()));
        }
        assert!(!headers.contains_key(http::header::CONTENT_LENGTH));
        assert!(!headers.contains_key(http::header::TRANSFER_ENCODING));
    }
});
