// The console as a test starts it: the real app (QubesWebHost), on its own data folder, its own libvirt test node
// and a free loopback port, so tests run in parallel without seeing each other.
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using QubesWeb.Hosting;
using QubesWeb.Hosting.SignIn;

namespace QubesWeb.Tests.Shared;

public sealed class ConsoleHost : IAsyncDisposable
{
    private ConsoleHost(WebApplication app, string dataDir, string baseUrl)
    {
        App = app;
        DataDir = dataDir;
        BaseUrl = baseUrl;
    }

    public WebApplication App { get; }
    public IServiceProvider Services => App.Services;
    public string DataDir { get; }
    public string BaseUrl { get; }

    public T Get<T>() where T : notnull => App.Services.GetRequiredService<T>();

    public int Port => new Uri(BaseUrl).Port;

    /// <summary>Where the console keeps the qubes' volume files (DATA/pool unless configured otherwise).</summary>
    public string PoolDir => Get<IOptions<QubesWebOptions>>().Value.PoolDir;

    /// <summary>The link the console printed at start (http://127.0.0.1:PORT/?token=...).</summary>
    public string SignInUrl => Get<SignInLink>().Url;

    /// <summary>A new signed-in session, as the sign-in link makes one: the cookie's name and value.</summary>
    public (string Name, string Value) NewSessionCookie() => (SignInMiddleware.CookieName(Port), Get<SessionStore>().Create().Id);

    /// <summary>An HttpClient that sends a signed-in session's cookie with every request.</summary>
    public HttpClient SignedInClient()
    {
        var (name, value) = NewSessionCookie();
        var http = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = new Uri(BaseUrl) };
        http.DefaultRequestHeaders.Add("Cookie", $"{name}={value}");
        return http;
    }

    /// <summary>
    /// Starts the console. With no <paramref name="libvirtUri"/> it runs the embedded demo, whose node file lives in
    /// its own data folder, on a copy of the demo estate (<see cref="SeededDemo"/>) unless the folder exists;
    /// <paramref name="dataDir"/> reuses a folder (a second start of the same console).
    /// </summary>
    public static async Task<ConsoleHost> StartAsync(string? libvirtUri = null, bool? demo = null, string? dataDir = null,
        params string[] extraArgs)
    {
        dataDir ??= NewDataDir();
        // A first start on the embedded demo: the estate it would make is copied in, made once for the process.
        if (libvirtUri is null && demo is not false && !Directory.Exists(dataDir))
            await SeededDemo.CopyToAsync(dataDir);
        var args = new List<string>
        {
            $"--DataDir={dataDir}",
            "--Port=0",
            Environment.GetEnvironmentVariable("QW_TEST_LOG") ?? "--Logging:LogLevel:Default=Warning",
            "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Warning",
        };
        if (libvirtUri is not null) args.Add($"--LibvirtUri={libvirtUri}");
        if (demo is not null) args.Add($"--Demo={demo}");
        args.AddRange(extraArgs);
        var app = QubesWebHost.Build([.. args]);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new ConsoleHost(app, dataDir, address.TrimEnd('/'));
    }

    public static string NewDataDir() => Path.Combine(Path.GetTempPath(), "qubesweb-test-" + Guid.NewGuid().ToString("N"));

    /// <summary>Stops the console but keeps its data folder, for a second start on the same folder.</summary>
    public async Task StopAsync()
    {
        if (_stopped) return;
        _stopped = true;
        await App.StopAsync();
        await App.DisposeAsync();
    }

    private bool _stopped;

    public async ValueTask DisposeAsync()
    {
        try { await StopAsync(); }
        catch (ObjectDisposedException) { }
        // Work the console started without awaiting it (a reconciliation queued by a last event, a usage refresh) may
        // still touch the folder for a moment after the host stopped; the folder goes once that has finished.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try
            {
                Directory.Delete(DataDir, recursive: true);
                return;
            }
            catch (DirectoryNotFoundException)
            {
                return;
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }
}
