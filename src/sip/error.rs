//! Why a SIP message was refused.

/// Parse failure. `reason()` is the stable stats/drop-reason key.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipError {
    #[error("empty message (only whitespace or keep-alive CRLFs)")]
    Empty,
    #[error("incomplete message: no blank line ends the header section")]
    Incomplete,
    #[error("header section longer than {max} bytes")]
    HeadersTooLarge { max: usize },
    #[error("more than {max} header fields")]
    TooManyHeaders { max: usize },
    #[error("malformed start line")]
    BadStartLine,
    #[error("SIP version is not SIP/2.0")]
    BadVersion,
    #[error("status code is not three digits in 100..=699")]
    BadStatusCode,
    #[error("method is not a token")]
    BadMethod,
    #[error("malformed Request-URI")]
    BadRequestUri,
    #[error("malformed header line at byte {offset}")]
    BadHeaderLine { offset: usize },
    #[error("Content-Length is not a non-negative number")]
    BadContentLength,
    #[error("body truncated: Content-Length {declared} but {available} bytes available")]
    BodyTruncated { declared: usize, available: usize },
    #[error("malformed CSeq")]
    BadCSeq,
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    #[error("'<' without matching '>'")]
    UnterminatedAngle,
    #[error("malformed name-addr")]
    BadNameAddr,
    #[error("malformed URI")]
    BadUri,
}

impl SipError {
    pub fn reason(&self) -> &'static str {
        match self {
            SipError::Empty => "sip_empty",
            SipError::Incomplete => "sip_incomplete",
            SipError::HeadersTooLarge { .. } => "sip_headers_too_large",
            SipError::TooManyHeaders { .. } => "sip_too_many_headers",
            SipError::BadStartLine => "sip_bad_start_line",
            SipError::BadVersion => "sip_bad_version",
            SipError::BadStatusCode => "sip_bad_status_code",
            SipError::BadMethod => "sip_bad_method",
            SipError::BadRequestUri => "sip_bad_request_uri",
            SipError::BadHeaderLine { .. } => "sip_bad_header_line",
            SipError::BadContentLength => "sip_bad_content_length",
            SipError::BodyTruncated { .. } => "sip_body_truncated",
            SipError::BadCSeq => "sip_bad_cseq",
            SipError::CSeqMismatch => "sip_cseq_mismatch",
            SipError::UnterminatedQuote => "sip_unterminated_quote",
            SipError::UnterminatedAngle => "sip_unterminated_angle",
            SipError::BadNameAddr => "sip_bad_name_addr",
            SipError::BadUri => "sip_bad_uri",
        }
    }

    /// On a stream transport (TCP, WebSocket) these mean "wait for more bytes";
    /// on a datagram they mean the message is truncated and should be dropped.
    pub fn is_incomplete(&self) -> bool {
        matches!(
            self,
            SipError::Empty | SipError::Incomplete | SipError::BodyTruncated { .. }
        )
    }
}
