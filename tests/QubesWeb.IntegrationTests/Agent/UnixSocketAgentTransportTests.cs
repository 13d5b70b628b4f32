// The unix socket transport's side of the protocol against a real qemu-ga: synchronising past stale data, commands the
// agent does not answer, one command at a time, and what an unreachable or silent agent looks like.
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using QubesWeb.Hypervisor.Agent;

namespace QubesWeb.IntegrationTests.Agent;

public sealed class UnixSocketAgentTransportTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_return_member_is_what_a_command_returns()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);

        var ping = await transport.ExecuteAsync("guest-ping", null, Generous);
        var info = await transport.ExecuteAsync("guest-info", null, Generous);
        var sync = await transport.ExecuteAsync("guest-sync", new { id = 4242 }, Generous);

        Assert.Equal(JsonValueKind.Object, ping.ValueKind);
        Assert.Empty(ping.EnumerateObject());
        Assert.False(string.IsNullOrEmpty(info.GetProperty("version").GetString()));
        Assert.Equal(4242, sync.GetInt32());
    }

    [Fact]
    public async Task Half_a_request_left_by_a_previous_client_is_flushed()
    {
        using var qga = await QemuGa.StartAsync();
        using (var previous = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await previous.ConnectAsync(new UnixDomainSocketEndPoint(qga.SocketPath));
            await previous.SendAsync(Encoding.UTF8.GetBytes("{\"execute\":\"guest-pi"));
        }
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);

        await new GuestAgent(transport).PingAsync();
        var echoed = await transport.ExecuteAsync("guest-sync", new JsonObject { ["id"] = 7 }, Generous);

        Assert.Equal(7, echoed.GetInt32());
    }

    [Fact]
    public async Task A_reply_nobody_waited_for_is_skipped_before_the_next_command()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);

        // Sent as if unanswered: the agent's replies to both stay in the stream.
        await transport.SendAsync("guest-sync", new JsonObject { ["id"] = 1 }, Generous);
        await transport.SendAsync("guest-qubesweb-nonsense", null, Generous);
        var echoed = await transport.ExecuteAsync("guest-sync", new JsonObject { ["id"] = 2 }, Generous);

        Assert.Equal(2, echoed.GetInt32());
    }

    [Fact]
    public async Task Concurrent_commands_each_get_their_own_reply()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);
        var agent = new GuestAgent(transport);

        var runs = Enumerable.Range(0, 8)
            .Select(i => agent.RunAsync("/bin/echo", [$"run {i}"], Generous))
            .ToArray();
        var syncs = Enumerable.Range(100, 8)
            .Select(async i => (await transport.ExecuteAsync("guest-sync", new JsonObject { ["id"] = i }, Generous))
                .GetInt32())
            .ToArray();

        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"run {i}\n"), (await Task.WhenAll(runs)).Select(r => r.StdOut));
        Assert.Equal(Enumerable.Range(100, 8), await Task.WhenAll(syncs));
    }

    [Fact]
    public async Task Clients_queueing_for_the_agent_are_served_in_turn()
    {
        // qemu-ga serves one client at a time with a listen backlog of 1, so most of these find the queue full at
        // first; each gets its turn as the one before closes.
        using var qga = await QemuGa.StartAsync();

        var pings = Enumerable.Range(0, 5).Select(async i =>
        {
            using var transport = new UnixSocketAgentTransport(qga.SocketPath);
            return (await transport.ExecuteAsync("guest-sync", new JsonObject { ["id"] = i }, Generous)).GetInt32();
        });

        Assert.Equal(Enumerable.Range(0, 5), await Task.WhenAll(pings));
        Assert.Null(qga.Ended);
    }

    [Fact]
    public async Task A_missing_socket_is_a_clear_unavailable_error()
    {
        using var folder = new TempFolder();
        var path = Path.Combine(folder.Path, "qga.sock");
        using var transport = new UnixSocketAgentTransport(path);

        var error = await Assert.ThrowsAsync<GuestAgentUnavailableException>(() =>
            new GuestAgent(transport).PingAsync());

        Assert.StartsWith($"Cannot connect to the guest agent at {path}: ", error.Message);
    }

    [Fact]
    public async Task An_agent_busy_with_another_client_times_out_and_is_usable_once_free()
    {
        using var qga = await QemuGa.StartAsync();
        var other = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await other.ConnectAsync(new UnixDomainSocketEndPoint(qga.SocketPath));
        // Answered means the agent serves this client: from now on it serves no one else.
        await other.SendAsync(Encoding.UTF8.GetBytes("{\"execute\":\"guest-ping\"}\n"));
        var answer = new byte[64];
        Assert.True(await other.ReceiveAsync(answer) > 0);
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);

        var error = await Assert.ThrowsAsync<TimeoutException>(() =>
            transport.ExecuteAsync("guest-ping", null, TimeSpan.FromMilliseconds(500)));

        Assert.Equal($"The guest agent at {qga.SocketPath} did not answer guest-sync-delimited within 500 ms " +
            "(is another client connected to it?).", error.Message);
        other.Dispose();
        Assert.Equal(JsonValueKind.Object, (await transport.ExecuteAsync("guest-ping", null, Generous)).ValueKind);
        Assert.Null(qga.Ended);
    }

    [Fact]
    public async Task Closing_with_a_reply_unread_leaves_the_agent_running()
    {
        // qemu-ga (unix-listen) quits when a client closes with replies unread; the transport reads them first.
        using var qga = await QemuGa.StartAsync();
        using (var first = new UnixSocketAgentTransport(qga.SocketPath))
        {
            await first.SendAsync("guest-info", null, Generous);
        }
        using var second = new UnixSocketAgentTransport(qga.SocketPath);

        await second.ExecuteAsync("guest-ping", null, Generous);

        Assert.Null(qga.Ended);
    }

    [Fact]
    public async Task A_disposed_transport_refuses_commands()
    {
        using var qga = await QemuGa.StartAsync();
        var transport = new UnixSocketAgentTransport(qga.SocketPath);
        await transport.ExecuteAsync("guest-ping", null, Generous);

        transport.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => transport.ExecuteAsync("guest-ping", null, Generous));
    }
}
