//! The forwarding protocol as `serve` reads it from any local client, and
//! as a client reads the holder's answer: arbitrary bytes must give a clear
//! error or a request that survives a round trip, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data)
        && let Ok(request) = decision_log::wire::parse_request(line)
    {
        let again = serde_json::to_string(&request).expect("a request serializes");
        assert_eq!(decision_log::wire::parse_request(&again).expect("its own form parses"), request);
    }
    // What a client does with a holder's answer line.
    let _ = serde_json::from_slice::<decision_log::wire::Answer>(data);
});
