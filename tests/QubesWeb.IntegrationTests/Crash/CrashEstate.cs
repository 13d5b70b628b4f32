// The console's services as the crash cases use them: in the child process about to be killed (CrashHarness), and in
// the test once the child is dead (CrashMatrix). A service provider itself, so the shared helpers that take one
// (JobRuns) take it too.
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using QubesWeb.Hosting;

namespace QubesWeb.IntegrationTests.Crash;

public sealed record CrashEstate(IServiceProvider Services, string DataDir) : IServiceProvider
{
    public object? GetService(Type serviceType) => Services.GetService(serviceType);

    public T Get<T>() where T : notnull => Services.GetRequiredService<T>();
}

/// <summary>
/// The console's services (AddQubesWeb: inventory, libvirt, start-up recovery, the job engine and its kinds, the
/// volume events, the disposables' cleanup) started on a data folder; not the web front, whose start alone costs a
/// second or more of CPU and which plays no part in a job or in start-up recovery.
/// </summary>
public sealed class CrashConsole : IAsyncDisposable
{
    private readonly IHost _app;

    private CrashConsole(IHost app, string dataDir)
    {
        _app = app;
        Estate = new CrashEstate(app.Services, dataDir);
    }

    public CrashEstate Estate { get; }

    /// <param name="libvirtUri">null: the demo's own test node in the folder, as the console runs by default.</param>
    public static async Task<CrashConsole> StartAsync(string dataDir, string? libvirtUri = null, LogLevel logLevel = LogLevel.Warning)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.SetMinimumLevel(logLevel);
        builder.Services.AddQubesWeb(new QubesWebOptions { DataDir = dataDir, Port = 0, LibvirtUri = libvirtUri, Demo = true });
        var app = builder.Build();
        try
        {
            await app.StartAsync();
        }
        catch
        {
            app.Dispose();
            throw;
        }
        return new CrashConsole(app, dataDir);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        _app.Dispose();
    }
}
