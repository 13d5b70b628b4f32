using Microsoft.AspNetCore.Components.Server.Circuits;

namespace QubesWeb.Hosting.SignIn;

/// <summary>
/// A user who works in one tab all day sends no HTTP requests, only circuit events: each of those counts as activity
/// for the session the circuit's connection signed in with, so it does not expire under their hands.
/// </summary>
public sealed class SessionCircuitHandler(IHttpContextAccessor http, TimeProvider? time = null) : CircuitHandler
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private Session? _session;

    public override Task OnConnectionUpAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        // The connection's own request (the WebSocket's upgrade) passed the door, which put its session there.
        if (http.HttpContext is { } context) _session = SignInMiddleware.SessionOf(context) ?? _session;
        return Task.CompletedTask;
    }

    public override Func<CircuitInboundActivityContext, Task> CreateInboundActivityHandler(Func<CircuitInboundActivityContext, Task> next) =>
        context =>
        {
            if (_session is { IsClosed: false } session) session.Touch(_time.GetUtcNow());
            return next(context);
        };
}
