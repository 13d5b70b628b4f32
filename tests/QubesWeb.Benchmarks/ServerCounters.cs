using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace QubesWeb.Benchmarks;

/// <summary>
/// What the console itself says while the load runs, read inside its process: ASP.NET Core's own meters (Blazor's
/// circuits, SignalR's connections, Kestrel's connections; counted from when this listener started) and every log
/// entry at Warning or above (the console's configured minimum), which is where circuit failures are reported.
/// </summary>
public sealed class ServerCounters : IDisposable, ILoggerProvider
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _values = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _logs = new();

    public ServerCounters(ILoggerFactory logs)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            var meter = instrument.Meter.Name;
            if (meter.StartsWith("Microsoft.AspNetCore.Components", StringComparison.Ordinal)
                || meter.StartsWith("Microsoft.AspNetCore.Http.Connections", StringComparison.Ordinal)
                || meter.StartsWith("Microsoft.AspNetCore.Server.Kestrel", StringComparison.Ordinal))
                listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            if (instrument is Counter<long> or UpDownCounter<long>) _values.AddOrUpdate(instrument.Name, value, (_, v) => v + value);
        });
        _listener.Start();
        logs.AddProvider(this);
    }

    /// <summary>The running sum of a counter or up-down counter since the listener started (0 if never seen).</summary>
    public long this[string instrument] => _values.TryGetValue(instrument, out var v) ? v : 0;

    /// <summary>The instrument names seen, for a look at what this runtime publishes.</summary>
    public IEnumerable<string> Names => _values.Keys.Order();

    /// <summary>Warnings and errors the console logged since <paramref name="mark"/> (an earlier <see cref="LogCount"/>).</summary>
    public string[] LogsSince(int mark) => [.. _logs.Skip(mark)];

    public int LogCount => _logs.Count;

    public Task<bool> WaitForAsync(string instrument, long value, TimeSpan timeout) =>
        Eventually.WithinAsync(() => this[instrument] == value, timeout);

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose() => _listener.Dispose();

    private sealed class Logger(ServerCounters owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            owner._logs.Enqueue($"{logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " (" + exception.GetType().Name + ": " + exception.Message + ")")}");
        }
    }
}
