using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace QubesWeb.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class CompactionReleasedRevisions : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<bool>(
                name: "Released",
                table: "Revisions",
                type: "INTEGER",
                nullable: false,
                defaultValue: false);

            migrationBuilder.AddColumn<long>(
                name: "ReleasedByJobId",
                table: "Revisions",
                type: "INTEGER",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "Released",
                table: "Revisions");

            migrationBuilder.DropColumn(
                name: "ReleasedByJobId",
                table: "Revisions");
        }
    }
}
