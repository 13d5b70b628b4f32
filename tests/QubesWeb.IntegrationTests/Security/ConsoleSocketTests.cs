// The serial console's WebSocket types into a qube: without a session, from another origin or for anything but a
// qube's name it is refused before the upgrade; in the demo (libvirt's test driver: no guest) it says so in its close.
using System.Net;
using System.Net.WebSockets;
using QubesWeb.Services.Consoles;

namespace QubesWeb.IntegrationTests.Security;

public sealed class ConsoleSocketTests
{
    [Fact]
    public async Task Without_a_session_the_console_socket_is_refused_before_the_upgrade()
    {
        await using var host = await ConsoleHost.StartAsync();
        using var none = await SerialConsoleClient.ConnectAsync(host, "work", signedIn: false);
        Assert.Equal(HttpStatusCode.Unauthorized, none.Status);
        // A cookie of the right name whose session does not exist (made up, or ended) is no session either.
        using var madeUp = await SerialConsoleClient.ConnectAsync(host, "work", signedIn: false,
            cookie: $"{QubesWeb.Hosting.SignIn.SignInMiddleware.CookieName(host.Port)}=made-up");
        Assert.Equal(HttpStatusCode.Unauthorized, madeUp.Status);
    }

    [Fact]
    public async Task From_a_foreign_or_missing_origin_the_console_socket_is_refused_even_with_a_session()
    {
        await using var host = await ConsoleHost.StartAsync();
        foreach (var origin in new[]
                 {
                     "http://evil.example", $"http://127.0.0.1:{host.Port}.evil.example", $"http://127.0.0.1:{host.Port}:9999",
                     $"http://localhost:{host.Port}", $"https://127.0.0.1:{host.Port}", "null", null,
                 })
        {
            using var client = await SerialConsoleClient.ConnectAsync(host, "work", origin: origin);
            Assert.True(client.Status == HttpStatusCode.Forbidden, $"Origin {origin ?? "(none)"}: {client.Status}");
        }
        // The same request from the console's own origin is let through (and told the demo has no console).
        using var own = await SerialConsoleClient.ConnectAsync(host, "work");
        Assert.Equal(HttpStatusCode.SwitchingProtocols, own.Status);
    }

    [Fact]
    public async Task A_name_that_is_no_qubes_is_refused_before_the_upgrade()
    {
        await using var host = await ConsoleHost.StartAsync();
        foreach (var bad in new[] { "%24(id)", "1stVM", "--helpVM", "test-%23%23%23", "Domain-0", "x-dm", "a%2Fb", "%00", "%E2%80%AEwork", new string('a', 4096) })
        {
            using var client = await SerialConsoleClient.ConnectAsync(host, bad);
            Assert.True(client.Status == HttpStatusCode.BadRequest, $"{bad[..Math.Min(bad.Length, 20)]}: {client.Status}");
        }
        // ".." is resolved by the server before routing: /qubes/../console/serial is no console's address at all.
        foreach (var unknown in new[] { "nosuchqube", "dom0", "%2E%2E" })
        {
            using var client = await SerialConsoleClient.ConnectAsync(host, unknown);
            Assert.True(client.Status == HttpStatusCode.NotFound, $"{unknown}: {client.Status}");
        }
    }

    [Fact]
    public async Task The_socket_address_is_only_a_websocket()
    {
        await using var host = await ConsoleHost.StartAsync();
        using var http = host.SignedInClient();
        using var response = await http.GetAsync("/qubes/work/console/serial");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task In_the_demo_the_socket_closes_saying_the_demo_runs_no_guest()
    {
        await using var host = await ConsoleHost.StartAsync();
        foreach (var qube in new[] { "work", "vault" }) // running and halted alike: there is no guest at all
        {
            using var client = await SerialConsoleClient.ConnectAsync(host, qube);
            Assert.Equal(HttpStatusCode.SwitchingProtocols, client.Status);
            await client.ClosedAsync();
            Assert.Equal((WebSocketCloseStatus)ConsoleClose.Unavailable, client.CloseStatus);
            Assert.Contains($"The demo runs no guest (libvirt's test driver), so {qube} has no console", client.CloseReason);
            Assert.Equal("", client.Text);
        }
    }
}
