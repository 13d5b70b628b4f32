// The console sockets (serial and graphical) type into a qube: without a session, from another origin or for anything
// but a qube's name they are refused before the upgrade; in the demo (libvirt's test driver: no guest) they say so in
// their close. Each test asks both sockets of one console.
using System.Net;
using System.Net.WebSockets;
using QubesWeb.Services.Consoles;

namespace QubesWeb.IntegrationTests.Security;

public sealed class ConsoleSocketTests
{
    private static readonly string[] Sockets = ["serial", "vnc"];

    [Fact]
    public async Task Without_a_session_the_console_sockets_are_refused_before_the_upgrade()
    {
        await using var host = await ConsoleHost.StartAsync();
        foreach (var console in Sockets)
        {
            using var none = await SerialConsoleClient.ConnectAsync(host, "work", signedIn: false, console: console);
            Assert.True(none.Status == HttpStatusCode.Unauthorized, $"{console}: {none.Status}");
            // A cookie of the right name whose session does not exist (made up, or ended) is no session either.
            using var madeUp = await SerialConsoleClient.ConnectAsync(host, "work", signedIn: false,
                cookie: $"{QubesWeb.Hosting.SignIn.SignInMiddleware.CookieName(host.Port)}=made-up", console: console);
            Assert.True(madeUp.Status == HttpStatusCode.Unauthorized, $"{console}: {madeUp.Status}");
        }
    }

    [Fact]
    public async Task From_a_foreign_or_missing_origin_the_console_sockets_are_refused_even_with_a_session()
    {
        await using var host = await ConsoleHost.StartAsync();
        foreach (var origin in new[]
                 {
                     "http://evil.example", $"http://127.0.0.1:{host.Port}.evil.example", $"http://127.0.0.1:{host.Port}:9999",
                     $"http://localhost:{host.Port}", $"https://127.0.0.1:{host.Port}", "null", null,
                 })
        foreach (var console in Sockets)
        {
            using var client = await SerialConsoleClient.ConnectAsync(host, "work", origin: origin, console: console);
            Assert.True(client.Status == HttpStatusCode.Forbidden, $"{console}, Origin {origin ?? "(none)"}: {client.Status}");
        }
        // The same request from the console's own origin is let through (and told the demo has no console).
        foreach (var console in Sockets)
        {
            using var own = await SerialConsoleClient.ConnectAsync(host, "work", console: console);
            Assert.True(own.Status == HttpStatusCode.SwitchingProtocols, $"{console}: {own.Status}");
        }
    }

    [Fact]
    public async Task A_name_that_is_no_qubes_is_refused_before_the_upgrade()
    {
        await using var host = await ConsoleHost.StartAsync();
        foreach (var console in Sockets)
        {
            foreach (var bad in new[] { "%24(id)", "1stVM", "--helpVM", "test-%23%23%23", "Domain-0", "x-dm", "a%2Fb", "%00", "%E2%80%AEwork", new string('a', 4096) })
            {
                using var client = await SerialConsoleClient.ConnectAsync(host, bad, console: console);
                Assert.True(client.Status == HttpStatusCode.BadRequest, $"{console}, {bad[..Math.Min(bad.Length, 20)]}: {client.Status}");
            }
            // ".." is resolved by the server before routing: /qubes/../console/serial is no console's address at all.
            foreach (var unknown in new[] { "nosuchqube", "dom0", "%2E%2E" })
            {
                using var client = await SerialConsoleClient.ConnectAsync(host, unknown, console: console);
                Assert.True(client.Status == HttpStatusCode.NotFound, $"{console}, {unknown}: {client.Status}");
            }
        }
    }

    [Fact]
    public async Task The_socket_addresses_are_only_websockets()
    {
        await using var host = await ConsoleHost.StartAsync();
        using var http = host.SignedInClient();
        foreach (var console in Sockets)
        {
            using var response = await http.GetAsync($"/qubes/work/console/{console}");
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{console}: {response.StatusCode}");
        }
    }

    [Fact]
    public async Task In_the_demo_the_sockets_close_saying_the_demo_runs_no_guest()
    {
        await using var host = await ConsoleHost.StartAsync();
        foreach (var (console, what) in new[] { ("serial", "console"), ("vnc", "screen") })
        foreach (var qube in new[] { "work", "vault" }) // running and halted alike: there is no guest at all
        {
            using var client = await SerialConsoleClient.ConnectAsync(host, qube, console: console);
            Assert.Equal(HttpStatusCode.SwitchingProtocols, client.Status);
            await client.ClosedAsync();
            Assert.Equal((WebSocketCloseStatus)ConsoleClose.Unavailable, client.CloseStatus);
            Assert.Contains($"The demo runs no guest (libvirt's test driver), so {qube} has no {what}", client.CloseReason);
            Assert.Equal("", client.Text);
        }
    }
}
