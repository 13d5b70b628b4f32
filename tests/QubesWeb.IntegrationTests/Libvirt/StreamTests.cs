// Streams against a private test-driver node: its screenshot (a PNG over a stream) is the stream a test can read
// without a guest. Consoles need a real domain: the real-hypervisor lane opens them.
using System.Buffers.Binary;
using QubesWeb.Hypervisor.Libvirt;

namespace QubesWeb.IntegrationTests.Libvirt;

public sealed class StreamTests
{
    private static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    private static TestNode RunningNode() =>
        new(new TestNodeDomain("work", Guid.NewGuid(), TestNode.Running));

    private static byte[] ReadToEnd(LibvirtStream stream)
    {
        var all = new MemoryStream();
        var buffer = new byte[4096];
        int n;
        while ((n = stream.Receive(buffer)) > 0) all.Write(buffer, 0, n);
        Assert.Equal(0, n);
        return all.ToArray();
    }

    private static (int Width, int Height) PngSize(byte[] png)
    {
        Assert.Equal(PngSignature, png[..8]);
        Assert.Equal("IHDR"u8.ToArray(), png[12..16]);
        return (BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
    }

    [Fact]
    public void A_screenshot_read_to_its_end_is_a_whole_png_of_the_screen()
    {
        using var node = RunningNode();
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");
        using var stream = LibvirtStream.New(connect);

        var mime = work.Screenshot(stream);
        var png = ReadToEnd(stream);
        stream.Finish();

        Assert.Equal("image/png", mime);
        // The test driver's fixed screen; the PNG ends with its IEND chunk, so nothing was cut short.
        Assert.Equal((1120, 832), PngSize(png));
        Assert.Equal("IEND"u8.ToArray(), png[^8..^4]);
    }

    [Fact]
    public async Task A_non_blocking_stream_read_through_its_events_gives_the_same_bytes()
    {
        using var node = RunningNode();
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");
        byte[] expected;
        using (var blocking = LibvirtStream.New(connect))
        {
            work.Screenshot(blocking);
            expected = ReadToEnd(blocking);
            blocking.Finish();
        }

        var nonBlocking = LibvirtStream.New(connect, StreamFlags.NonBlock);
        work.Screenshot(nonBlocking);
        using var pipe = new StreamPipe(nonBlocking);
        var stream = new MemoryStream();
        var buffer = new byte[1000];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int n;
        while ((n = await pipe.ReadAsync(buffer, timeout.Token)) > 0) stream.Write(buffer, 0, n);
        pipe.Finish();

        Assert.Equal(expected, stream.ToArray());
    }

    [Fact]
    public void An_aborted_stream_cannot_be_read_any_more()
    {
        using var node = RunningNode();
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");
        using var stream = LibvirtStream.New(connect);
        work.Screenshot(stream);
        var buffer = new byte[64];
        Assert.True(stream.Receive(buffer) > 0);

        stream.Abort();

        Assert.Throws<LibvirtException>(() => stream.Receive(buffer));
    }

    [Fact]
    public void The_test_driver_has_no_consoles_and_says_so()
    {
        using var node = RunningNode();
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");
        using var stream = LibvirtStream.New(connect, StreamFlags.NonBlock);

        var error = Assert.Throws<LibvirtException>(() => work.OpenConsole(null, stream, DomainConsoleFlags.Safe));

        // What demo mode tells the user instead of showing a broken terminal.
        Assert.Equal(ErrorNumber.NoSupport, error.Code);
    }

    [Fact]
    public void A_stream_takes_one_event_callback()
    {
        using var node = RunningNode();
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");
        using var stream = LibvirtStream.New(connect, StreamFlags.NonBlock);
        work.Screenshot(stream);
        stream.AddCallback(StreamEventType.Readable, _ => { });

        Assert.Throws<InvalidOperationException>(() => stream.AddCallback(StreamEventType.Readable, _ => { }));
        stream.RemoveCallback();
        stream.Abort();
    }
}
