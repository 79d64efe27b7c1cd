//! [`Typed`] as an extractor: the same few lines per framework, over each
//! framework's `Session` extractor.

#[cfg(feature = "axum")]
impl<S: Send + Sync, T: crate::SessionData> axum_core::extract::FromRequestParts<S>
    for crate::Typed<T>
{
    type Rejection = crate::Error;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let session = crate::Session::from_request_parts(parts, state).await?;
        Self::load(&session)
    }
}

#[cfg(feature = "actix")]
impl<T: crate::SessionData> actix_web::FromRequest for crate::Typed<T> {
    type Error = crate::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(
        request: &actix_web::HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        let session = crate::Session::from_request(request, payload);
        Box::pin(async move { Self::load(&session.await?) })
    }
}
