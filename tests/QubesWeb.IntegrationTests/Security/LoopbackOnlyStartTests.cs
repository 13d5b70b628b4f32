// The built console, started as its own process, refuses every way of being told to listen beyond loopback.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace QubesWeb.IntegrationTests.Security;

public sealed partial class LoopbackOnlyStartTests
{
    private static readonly TimeSpan ExitDeadline = TimeSpan.FromSeconds(60);

    /// <summary>How the address is given ({port} is replaced by a free port), and the text stderr must name.</summary>
    public static TheoryData<string, string, string> NonLoopback => new()
    {
        { "arg", "--urls=http://0.0.0.0:{port}", "http://0.0.0.0:{port}" },
        { "arg", "--urls=http://[::]:{port}", "http://[::]:{port}" },
        { "arg", "--urls=http://example.com:{port}", "http://example.com:{port}" },
        { "arg", "--urls=http://127.0.0.1:{port};http://0.0.0.0:{port}", "http://0.0.0.0:{port}" },
        { "env", "ASPNETCORE_URLS=http://0.0.0.0:{port}", "http://0.0.0.0:{port}" },
        { "env", "ASPNETCORE_HTTP_PORTS={port}", "HTTP_PORTS" },
        { "arg", "--Kestrel:Endpoints:Http:Url=http://0.0.0.0:{port}", "http://0.0.0.0:{port}" },
    };

    [Theory]
    [MemberData(nameof(NonLoopback))]
    public async Task A_non_loopback_address_stops_the_start(string how, string setting, string named)
    {
        var port = FreePort();
        var dataDir = ConsoleHost.NewDataDir();
        try
        {
            var psi = ChildProcess.Console(dataDir);
            setting = setting.Replace("{port}", port.ToString());
            if (how == "arg")
            {
                // --urls as two arguments, as a user types it; configuration keys in their --Key=value form.
                var eq = setting.IndexOf('=');
                if (setting.StartsWith("--urls", StringComparison.Ordinal)) { psi.ArgumentList.Add("--urls"); psi.ArgumentList.Add(setting[(eq + 1)..]); }
                else psi.ArgumentList.Add(setting);
            }
            else
            {
                var eq = setting.IndexOf('=');
                psi.Environment[setting[..eq]] = setting[(eq + 1)..];
            }

            using var run = ChildProcess.Start(psi);
            var exited = await run.WaitForExitAsync(ExitDeadline);
            Assert.True(exited, $"The console still runs {ExitDeadline.TotalSeconds} s after being given {setting}.\nstdout:\n{run.Stdout}\nstderr:\n{run.Stderr}");
            Assert.NotEqual(0, run.Process.ExitCode);
            var stderr = run.Stderr;
            Assert.Contains(named.Replace("{port}", port.ToString()), stderr);
            Assert.Contains("loopback", stderr, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("Now listening on", run.Stdout);
            Assert.DoesNotContain("Unhandled exception", stderr);

            await AssertNothingListensOn(port);
        }
        finally
        {
            DeleteQuietly(dataDir);
        }
    }

    [Fact]
    public async Task A_loopback_address_starts_and_answers()
    {
        var dataDir = ConsoleHost.NewDataDir();
        try
        {
            var psi = ChildProcess.Console(dataDir);
            psi.ArgumentList.Add("--urls");
            psi.ArgumentList.Add("http://127.0.0.1:0");
            psi.ArgumentList.Add("--Demo=false");
            psi.ArgumentList.Add("--Logging:LogLevel:Microsoft.Hosting.Lifetime=Information");

            using var run = ChildProcess.Start(psi);
            var line = await run.WaitForStdoutAsync(l => l.Contains("Now listening on", StringComparison.Ordinal), ExitDeadline);
            Assert.True(line is not null, $"No 'Now listening on' within {ExitDeadline.TotalSeconds} s.\nstdout:\n{run.Stdout}\nstderr:\n{run.Stderr}");
            var url = ListeningUrl().Match(line!).Value;
            Assert.StartsWith("http://127.0.0.1:", url);

            // The sign-in link it printed leads into the console (its redirect sets the session cookie).
            var link = await run.WaitForStdoutAsync(l => l.StartsWith("QubesWeb: sign in at ", StringComparison.Ordinal), ExitDeadline);
            Assert.True(link is not null, $"No sign-in link printed.\nstdout:\n{run.Stdout}");
            var signIn = link!["QubesWeb: sign in at ".Length..].Trim();
            Assert.StartsWith(url.TrimEnd('/') + "/?token=", signIn);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            using (var refused = await http.GetAsync(url))
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            using var response = await http.GetAsync(signIn);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(url.TrimEnd('/') + "/", response.RequestMessage!.RequestUri!.ToString());
        }
        finally
        {
            DeleteQuietly(dataDir);
        }
    }

    private static async Task AssertNothingListensOn(int port)
    {
        using var client = new TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        // Nothing holds the port on any interface either: it can be bound on all of them.
        var listener = new TcpListener(IPAddress.Any, port);
        listener.Start();
        listener.Stop();
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Any, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static void DeleteQuietly(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex ListeningUrl();
}
