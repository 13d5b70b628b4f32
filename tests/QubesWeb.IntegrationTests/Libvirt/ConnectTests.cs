// Connection lifetime, listing and lookup against a private test-driver node.
using QubesWeb.Hypervisor.Libvirt;
using LibvirtLibrary = global::QubesWeb.Hypervisor.Libvirt.Libvirt;

namespace QubesWeb.IntegrationTests.Libvirt;

public sealed class ConnectTests
{
    private static readonly Guid WorkUuid = Guid.Parse("6a1f6c9e-0d55-4c52-9d7e-0b4a4f0c1a01");
    private static readonly Guid VaultUuid = Guid.Parse("6a1f6c9e-0d55-4c52-9d7e-0b4a4f0c1a02");
    private static readonly Guid MailUuid = Guid.Parse("6a1f6c9e-0d55-4c52-9d7e-0b4a4f0c1a03");

    private static TestNode ThreeDomainNode() => new(
        new TestNodeDomain("work", WorkUuid, TestNode.Running),
        new TestNodeDomain("vault", VaultUuid, TestNode.Shutoff),
        new TestNodeDomain("mail", MailUuid, TestNode.Paused));

    [Fact]
    public void Library_version_is_the_installed_libvirt()
    {
        Assert.True(LibvirtLibrary.LibraryVersion >= new Version(1, 2, 8), LibvirtLibrary.LibraryVersion.ToString());
    }

    [Fact]
    public void Open_connection_is_alive_until_disposed_and_dispose_is_idempotent()
    {
        using var node = new TestNode();
        var connect = Connect.Open(node.Uri);

        Assert.True(connect.IsAlive);
        Assert.Equal(node.Uri, connect.Uri);

        connect.Dispose();
        Assert.False(connect.IsAlive);
        connect.Dispose();
    }

    [Fact]
    public void Opening_an_unreachable_node_throws_with_libvirts_message()
    {
        var error = Assert.Throws<LibvirtException>(() => Connect.Open("test:///nonexistent/dir/node.xml"));

        // The test driver reports an unreadable node file as an XML error naming the file.
        Assert.Equal(ErrorNumber.XmlError, error.Code);
        Assert.Contains("/nonexistent/dir/node.xml", error.Message);
        Assert.Equal(ErrorLevel.Error, error.Level);
    }

    [Fact]
    public void Keepalive_is_tolerated_on_a_local_driver()
    {
        using var node = new TestNode();
        using var connect = Connect.Open(node.Uri);

        connect.SetKeepAlive(5, 3);

        Assert.True(connect.IsAlive);
    }

    [Fact]
    public void List_all_domains_returns_each_domain_with_its_state()
    {
        using var node = ThreeDomainNode();
        using var connect = Connect.Open(node.Uri);

        var domains = connect.ListAllDomains();
        try
        {
            var byName = domains.ToDictionary(d => d.Name, d => (d.Uuid, d.GetState().State));
            Assert.Equal(3, byName.Count);
            Assert.Equal((WorkUuid, DomainState.Running), byName["work"]);
            Assert.Equal((VaultUuid, DomainState.Shutoff), byName["vault"]);
            Assert.Equal((MailUuid, DomainState.Paused), byName["mail"]);
        }
        finally
        {
            foreach (var domain in domains)
            {
                domain.Dispose();
            }
        }
    }

    [Fact]
    public void List_filters_by_flags()
    {
        using var node = ThreeDomainNode();
        using var connect = Connect.Open(node.Uri);

        var active = connect.ListAllDomains(ConnectListAllDomainsFlags.Active).Select(d => d.Name).Order();
        var inactive = connect.ListAllDomains(ConnectListAllDomainsFlags.Inactive).Select(d => d.Name);
        var paused = connect.ListAllDomains(ConnectListAllDomainsFlags.Paused).Select(d => d.Name);

        Assert.Equal(["mail", "work"], active);
        Assert.Equal(["vault"], inactive);
        Assert.Equal(["mail"], paused);
    }

    [Fact]
    public void Lookup_by_name_and_by_uuid_find_the_same_domain()
    {
        using var node = ThreeDomainNode();
        using var connect = Connect.Open(node.Uri);

        using var byName = connect.LookupDomainByName("vault");
        using var byUuid = connect.LookupDomainByUuid(VaultUuid);

        Assert.Equal(VaultUuid, byName.Uuid);
        Assert.Equal("vault", byUuid.Name);
    }

    [Fact]
    public void Lookup_of_a_missing_name_throws_no_domain_with_libvirts_message()
    {
        using var node = ThreeDomainNode();
        using var connect = Connect.Open(node.Uri);

        var error = Assert.Throws<LibvirtException>(() => connect.LookupDomainByName("absent"));

        Assert.Equal(ErrorNumber.NoDomain, error.Code);
        Assert.Equal(ErrorDomain.Test, error.Domain);
        // The test driver does not name the missing domain (the qemu driver does): callers add the name themselves.
        Assert.StartsWith("Domain not found", error.Message);
        Assert.Null(connect.TryLookupDomainByName("absent"));
    }

    [Fact]
    public void Lookup_of_a_missing_uuid_throws_no_domain()
    {
        using var node = ThreeDomainNode();
        using var connect = Connect.Open(node.Uri);

        var error = Assert.Throws<LibvirtException>(() => connect.LookupDomainByUuid(Guid.NewGuid()));

        Assert.Equal(ErrorNumber.NoDomain, error.Code);
    }

    [Fact]
    public void An_error_does_not_linger_into_the_next_successful_call()
    {
        using var node = ThreeDomainNode();
        using var connect = Connect.Open(node.Uri);

        Assert.Null(connect.TryLookupDomainByName("absent"));
        using var work = connect.LookupDomainByName("work");

        Assert.Equal(DomainState.Running, work.GetState().State);
    }

    [Fact]
    public void Connections_to_separate_node_files_do_not_see_each_other()
    {
        using var first = new TestNode(new TestNodeDomain("only-here", Guid.NewGuid()));
        using var second = new TestNode();
        using var a = Connect.Open(first.Uri);
        using var b = Connect.Open(second.Uri);

        Assert.Single(a.ListAllDomains());
        Assert.Empty(b.ListAllDomains());
    }

    [Fact]
    public void Domains_outlive_the_disposed_connection_that_produced_them()
    {
        using var node = ThreeDomainNode();
        var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");

        connect.Dispose();

        Assert.Equal(DomainState.Running, work.GetState().State);
    }

    [Fact]
    public void Using_a_disposed_connection_throws_object_disposed()
    {
        using var node = ThreeDomainNode();
        var connect = Connect.Open(node.Uri);
        connect.Dispose();

        Assert.Throws<ObjectDisposedException>(() => connect.ListAllDomains());
    }

    [Fact]
    public void A_close_callback_can_be_registered_on_a_local_connection()
    {
        using var node = new TestNode();
        using var connect = Connect.Open(node.Uri);

        connect.RegisterCloseCallback(_ => { });

        Assert.True(connect.IsAlive);
        Assert.Throws<InvalidOperationException>(() => connect.RegisterCloseCallback(_ => { }));
    }
}
